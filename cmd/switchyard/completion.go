package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
)

// completionCommand is "switchyard completion bash|zsh": print a script
// that completes switchyard's commands, subcommands, flags and the values
// of their first argument, made from the command table so it never lags
// behind it.
func completionCommand(_ *flag.FlagSet, c *cli) runner {
	return func(_ context.Context, args []string) error {
		if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
			return usagef("want bash or zsh")
		}
		if args[0] == "zsh" {
			// zsh runs bash completion functions through bashcompinit.
			fmt.Fprint(c.stdout, "#compdef switchyard\nautoload -U +X bashcompinit && bashcompinit\n")
		}
		return completionScript.Execute(c.stdout, completionData())
	}
}

// completion is what the script completes for one command.
type completion struct {
	Name    string
	Flags   string
	Choices string
}

// completionData lists the top-level words, each group's subcommands, and
// every command's flags and choices.
func completionData() map[string]any {
	quiet := &cli{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	var (
		words  []string
		groups = map[string][]string{}
		each   []completion
	)
	for _, cmd := range commands() {
		first, sub, _ := strings.Cut(cmd.name, " ")
		if !slices.Contains(words, first) {
			words = append(words, first)
		}
		if sub != "" {
			groups[first] = append(groups[first], sub)
		}
		fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
		cmd.setup(fs, quiet)
		var flags []string
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, "--"+f.Name) })
		each = append(each, completion{Name: cmd.name, Flags: strings.Join(append(flags, "--help"), " "), Choices: strings.Join(cmd.choices, " ")})
	}
	subs := map[string]string{}
	for g, s := range groups {
		subs[g] = strings.Join(s, " ")
	}
	return map[string]any{"Words": strings.Join(append(words, "help"), " "), "Groups": subs, "Commands": each}
}

var completionScript = template.Must(template.New("bash").Parse(`# switchyard completion: source <(switchyard completion bash)
_switchyard() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} at=2
	case $cmd in
{{- range $g, $s := .Groups}}
	{{$g}}) cmd="$cmd ${COMP_WORDS[2]}"; at=3 ;;
{{- end}}
	esac
	COMPREPLY=()
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "{{.Words}}" -- "$cur"))
	elif ((COMP_CWORD == 2 && at == 3)); then
		case ${COMP_WORDS[1]} in
{{- range $g, $s := .Groups}}
		{{$g}}) COMPREPLY=($(compgen -W "{{$s}}" -- "$cur")) ;;
{{- end}}
		esac
	elif [[ $cur == -* ]]; then
		case $cmd in
{{- range .Commands}}
		"{{.Name}}") COMPREPLY=($(compgen -W "{{.Flags}}" -- "$cur")) ;;
{{- end}}
		esac
	elif ((COMP_CWORD == at)); then
		case $cmd in
{{- range .Commands}}{{if .Choices}}
		"{{.Name}}") COMPREPLY=($(compgen -W "{{.Choices}}" -- "$cur")) ;;
{{- end}}{{end}}
		esac
	fi
}
complete -o default -F _switchyard switchyard
`))
