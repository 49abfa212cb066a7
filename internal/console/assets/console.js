// Switchyard console: live pages and confirmation dialogs. Everything here
// is an improvement on plain links and forms, which work without it.
"use strict";

(function () {
  const body = document.body;
  const dialog = document.getElementById("dialog");
  let shown = { revision: Number(body.dataset.revision), mode: body.dataset.mode };
  let opener = null;

  // parse reads an HTML answer into a document.
  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  // notice says something in the page's live region.
  function notice(text) {
    const p = document.getElementById("live-notice");
    if (p) {
      p.textContent = text;
      p.hidden = false;
    }
  }

  // --- Live pages: every revision the server installs is announced on its
  // own stream; the parts of the page marked data-live are fetched again.

  let refreshing = false;
  let again = false;

  async function refresh(ev) {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      const live = document.querySelectorAll("[data-live][id]");
      if (live.length === 0) {
        notice("Revision " + ev.revision + " is out; this page shows revision " + shown.revision + ". Reload to see it.");
        return;
      }
      const res = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!res.ok || res.redirected) {
        return;
      }
      const doc = parse(await res.text());
      for (const el of live) {
        const fresh = doc.getElementById(el.id);
        if (fresh && !el.contains(document.activeElement)) {
          el.replaceWith(document.importNode(fresh, true));
        }
      }
      const revision = Number(doc.body.dataset.revision);
      const label = document.getElementById("revision");
      const freshLabel = doc.getElementById("revision");
      if (label && freshLabel) {
        label.textContent = freshLabel.textContent;
      }
      for (const input of document.querySelectorAll("form[data-confirm] input[name=base]")) {
        input.value = String(revision);
      }
      if (dialog.open && revision !== shown.revision) {
        const form = dialog.querySelector("#confirm-form");
        if (form && !dialog.querySelector(".stale")) {
          const p = document.createElement("p");
          p.className = "notice stale";
          p.setAttribute("role", "alert");
          p.textContent = "Revision " + revision + " is out since this confirmation was prepared: applying it will be refused, and nothing overwritten.";
          form.before(p);
        }
      }
      shown = { revision: revision, mode: doc.body.dataset.mode };
      body.dataset.revision = String(revision);
    } catch (err) {
      // The next announcement tries again; the page stays as it was.
    } finally {
      refreshing = false;
      if (again) {
        again = false;
        refresh(ev);
      }
    }
  }

  if (window.EventSource && body.dataset.revision !== undefined && document.getElementById("revision")) {
    const stream = new EventSource("/v1/stream");
    const state = document.getElementById("live-state");
    state.hidden = false;
    state.textContent = "connecting…";
    // The badge says whether the page follows changes; the browser
    // reconnects a lost stream by itself.
    stream.addEventListener("open", function () {
      state.textContent = "live";
      state.dataset.state = "live";
    });
    stream.addEventListener("error", function () {
      state.textContent = "reconnecting…";
      state.dataset.state = "lost";
    });
    // A page left behind lets its stream go at once: the browser allows
    // only a few connections to one server.
    window.addEventListener("pagehide", function () {
      stream.close();
    });
    stream.addEventListener("revision", function (e) {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (ev.revision !== shown.revision || ev.mode !== shown.mode) {
        refresh(ev);
      }
    });
  }

  // --- Confirmations open in a dialog; its form is sent from there, and
  // a refusal is shown in place, as the API words it.

  function show(doc) {
    const part = doc.getElementById("confirmation") || doc.querySelector("main");
    dialog.replaceChildren(document.importNode(part, true));
    if (!dialog.open) {
      dialog.showModal();
    }
    const focus = dialog.querySelector("[role=alert], #phrase") || dialog.querySelector("input, button, a");
    if (focus) {
      if (!focus.matches("input, button, a, textarea, select")) {
        focus.tabIndex = -1;
      }
      focus.focus();
    }
  }

  async function open(form, submitter) {
    const query = new URLSearchParams(new FormData(form, submitter));
    const res = await fetch(form.action + "?" + query.toString(), { credentials: "same-origin" });
    if (res.redirected) {
      location.assign(res.url);
      return;
    }
    show(parse(await res.text()));
  }

  // send posts the confirmation. Applied, the server redirects to the page
  // the change was made from, which is then loaded as a page, so it shows
  // the outcome; refused, the confirmation comes back with the error.
  async function send(form) {
    const res = await fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      body: new URLSearchParams(new FormData(form)),
      redirect: "manual",
    });
    if (res.type === "opaqueredirect") {
      location.assign(form.elements["return"].value);
      return;
    }
    show(parse(await res.text()));
  }

  document.addEventListener("submit", function (e) {
    const form = e.target;
    if (form.matches("form[data-confirm]")) {
      e.preventDefault();
      opener = e.submitter || form.querySelector("button");
      open(form, e.submitter).catch(function () {
        form.submit();
      });
    } else if (dialog.contains(form) && form.id === "confirm-form") {
      e.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      send(form).catch(function () {
        button.disabled = false;
        notice("The change could not be sent; nothing was applied. Try again.");
      });
    }
  });

  dialog.addEventListener("click", function (e) {
    if (e.target.closest("[data-cancel]")) {
      e.preventDefault();
      dialog.close();
    }
  });

  dialog.addEventListener("close", function () {
    dialog.replaceChildren();
    if (opener) {
      opener.focus();
      opener = null;
    }
  });
})();
