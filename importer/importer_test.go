package importer

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// user is a documented evaluation: a flag, an OFREP context, and what the
// source vendor serves for it (a variant name, or one of several when the
// vendor's choice cannot be reproduced, or "" with a reason for the
// application's default).
type user struct {
	name    string
	flag    string
	ctx     map[string]any
	variant string
	oneOf   []string
	reason  evaluator.Reason
	value   any
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compile builds the flag set Switchyard serves for an imported document.
func compile(t *testing.T, doc switchyard.Document) *evaluator.FlagSet {
	t.Helper()
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags, r.Evaluators, r.Metadata = doc.Flags, doc.Evaluators, doc.Metadata
	fs, err := evaluator.Compile(r, "")
	if err != nil {
		t.Fatalf("compile imported document: %v", err)
	}
	return fs
}

// exportAndReparse writes the document as flagd JSON, as `switchyard
// export` does, and reads it back as flagd would be given it.
func exportAndReparse(t *testing.T, doc switchyard.Document) switchyard.Document {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := evaluator.ParseDocument(b)
	if err != nil {
		t.Fatalf("exported document does not parse as flagd JSON: %v", err)
	}
	again, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(b) {
		t.Fatalf("export is not stable:\n%s\n%s", b, again)
	}
	return back
}

// checkUsers evaluates every documented user against the imported flags and
// against the same flags exported to flagd JSON and read back.
func checkUsers(t *testing.T, doc switchyard.Document, users []user) {
	t.Helper()
	sets := map[string]*evaluator.FlagSet{"imported": compile(t, doc), "exported": compile(t, exportAndReparse(t, doc))}
	for _, set := range []string{"imported", "exported"} {
		fs := sets[set]
		for _, u := range users {
			got := fs.Evaluate(u.flag, u.ctx)
			switch {
			case u.reason != "":
				if got.Reason != u.reason || got.Value != nil {
					t.Errorf("%s %s %s: got %s %v (%s), want reason %s and the application's default",
						set, u.flag, u.name, got.Variant, got.Value, got.Reason, u.reason)
				}
			case u.oneOf != nil:
				if !slices.Contains(u.oneOf, got.Variant) {
					t.Errorf("%s %s %s: got %q (%s %s), want one of %v", set, u.flag, u.name, got.Variant, got.Reason, got.ErrorMessage, u.oneOf)
				}
			default:
				if got.Variant != u.variant {
					t.Errorf("%s %s %s: got %q (%s %s), want %q", set, u.flag, u.name, got.Variant, got.Reason, got.ErrorMessage, u.variant)
				}
			}
			if u.value != nil && !reflect.DeepEqual(got.Value, u.value) {
				t.Errorf("%s %s %s: value %#v, want %#v", set, u.flag, u.name, got.Value, u.value)
			}
		}
	}
}

// reportKey identifies a note for comparison; messages are free text.
type reportKey struct {
	Flag, Path string
	Severity   Severity
}

func checkReport(t *testing.T, got []Note, want []reportKey) {
	t.Helper()
	var keys []reportKey
	for _, n := range got {
		if n.Message == "" {
			t.Errorf("note without a message: %+v", n)
		}
		keys = append(keys, reportKey{n.Flag, n.Path, n.Severity})
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("report:\n got  %v\n want %v\nnotes: %+v", keys, want, got)
	}
}

// ldVariant is LaunchDarkly's documented rollout assignment, computed here
// from the algorithm and not from the evaluator: the first 15 hex digits of
// SHA-1("<flag>.<salt>.<key>") (or "<seed>.<key>") over 0xFFFFFFFFFFFFFFF,
// as a float32 as the SDKs do, against the cumulative weights / 100000.
func ldVariant(flag, salt string, seed *int, key string, weights []int, names []string) string {
	input := flag + "." + salt + "." + key
	if seed != nil {
		input = strconv.Itoa(*seed) + "." + key
	}
	sum := sha1.Sum([]byte(input))
	h, err := strconv.ParseUint(hex.EncodeToString(sum[:])[:15], 16, 64)
	if err != nil {
		panic(err)
	}
	bucket := float32(h) / float32(0xFFFFFFFFFFFFFFF)
	var acc float32
	for i, w := range weights {
		acc += float32(w) / 100000.0
		if bucket < acc {
			return names[i]
		}
	}
	return names[len(names)-1]
}

// murmur3 is MurmurHash3 x86 32-bit, written out here so the expected
// Unleash assignments do not come from the code under test.
func murmur3(data []byte, seed uint32) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	h := seed
	n := len(data) / 4
	for i := range n {
		k := binary.LittleEndian.Uint32(data[i*4:])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		k ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(tail[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(len(data))
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// unleashHash is Unleash's normalizedHash from its client specification.
func unleashHash(value, group string, normalizer, seed uint32) uint32 {
	return murmur3([]byte(group+":"+value), seed)%normalizer + 1
}

func TestMurmur3ReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0},
		{"", 1, 0x514e28b7},
		{"hello", 0, 0x248bfa47},
		{"The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723},
	} {
		if got := murmur3([]byte(tc.in), tc.seed); got != tc.want {
			t.Errorf("murmur3(%q, %d) = %#x, want %#x", tc.in, tc.seed, got, tc.want)
		}
	}
}

func TestImportRejectsUnknownFormat(t *testing.T) {
	_, err := Import("split", []byte(`{}`), Options{})
	if switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest {
		t.Fatalf("got %v, want an invalid request", err)
	}
}
