// The wirewatch console's playground: the form becomes a watch-list definition, run as a
// backtest (POST /api/v1/backtest) a moment after the last keystroke, and its TOML.
// Everything the server sends back is put on the page as text (textContent), never as
// markup. The other pages of the console do not need this script.
"use strict";

(function () {
  const form = document.getElementById("playground");
  if (!form) {
    return;
  }
  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 400;
  let timer = null;
  let latest = 0;

  const lines = (text) =>
    text.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);

  // `SCO = Shanghai Cooperation Organisation, ШОС` lines as {"SCO": [...]}.
  function aliases(text) {
    const out = {};
    for (const line of lines(text)) {
      const at = line.indexOf("=");
      if (at < 0) {
        continue;
      }
      const term = line.slice(0, at).trim();
      const names = line.slice(at + 1).split(",").map((s) => s.trim()).filter(Boolean);
      if (term && names.length) {
        out[term] = names;
      }
    }
    return out;
  }

  function definition() {
    const fields = Array.from(form.querySelectorAll('input[name="fields"]:checked')).map(
      (box) => box.value,
    );
    const languages = $("languages").value.split(",").map((s) => s.trim()).filter(Boolean);
    const query = $("query").value.trim();
    const def = {
      name: $("name").value.trim(),
      terms: lines($("terms").value),
      aliases: aliases($("aliases").value),
      exclude: lines($("exclude").value),
    };
    if (query) def.query = query;
    if (fields.length) def.fields = fields;
    // Always sent: `[]` reads every language, where leaving it out would inherit the
    // configured watch-list's filter.
    def.languages = languages;
    def.acronyms_exact = $("acronyms_exact").checked;
    return def;
  }

  // TOML basic strings: JSON's escapes, plus DEL, which TOML wants escaped; a lone
  // surrogate (JSON's \udXXX) is no character in TOML, so it becomes U+FFFD.
  const str = (s) =>
    JSON.stringify(s)
      .replace(/\u007f/g, "\\u007F")
      .replace(/\\u(d[89a-f][0-9a-f]{2})/gi, "\\uFFFD");
  const list = (items) => "[" + items.map(str).join(", ") + "]";

  function toml(def) {
    const out = ["[[watchlists]]", "name = " + str(def.name || "playground")];
    out.push("terms = " + list(def.terms));
    const names = Object.keys(def.aliases);
    if (names.length) {
      out.push(
        "aliases = { " + names.map((t) => str(t) + " = " + list(def.aliases[t])).join(", ") + " }",
      );
    }
    if (def.query) out.push("query = " + str(def.query));
    if (def.exclude.length) out.push("exclude = " + list(def.exclude));
    if (def.fields) out.push("fields = " + list(def.fields));
    if (def.languages.length) out.push("languages = " + list(def.languages));
    if (!def.acronyms_exact) out.push("acronyms_exact = false");
    const option = $("compare").selectedOptions[0];
    const webhooks = option && option.value ? JSON.parse(option.dataset.webhooks || "[]") : [];
    if (webhooks.length) {
      out.push("webhooks = " + list(webhooks));
    } else {
      out.push('# webhooks = ["NAME"]  # the [[webhooks]] it alerts');
    }
    return out.join("\n") + "\n";
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // A story the backtest lists: its title, linked when the address is a web one.
  function story(alert) {
    const li = el("li");
    li.className = "alert";
    let title;
    if (alert.url && /^https?:\/\//i.test(alert.url)) {
      title = el("a", alert.title);
      title.href = alert.url;
      title.rel = "noopener noreferrer nofollow";
    } else {
      title = el("span", alert.title);
    }
    title.classList.add("title");
    li.appendChild(title);
    for (const term of alert.terms || []) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", term, "term"));
    }
    return li;
  }

  function stories(heading, alerts, id) {
    const section = el("div");
    section.id = id;
    section.appendChild(el("h3", heading + " (" + alerts.length + ")"));
    if (alerts.length === 0) {
      section.appendChild(el("p", "None.", "empty"));
    } else {
      const ul = el("ul");
      alerts.forEach((a) => ul.appendChild(story(a)));
      section.appendChild(ul);
    }
    return section;
  }

  function counts(heading, map, id) {
    const section = el("div");
    section.id = id;
    section.appendChild(el("h3", heading));
    const keys = Object.keys(map);
    if (keys.length === 0) {
      section.appendChild(el("p", "None.", "empty"));
      return section;
    }
    const table = el("table");
    const body = el("tbody");
    for (const key of keys) {
      const row = el("tr");
      row.appendChild(el("th", key));
      row.firstChild.scope = "row";
      row.appendChild(el("td", String(map[key])));
      body.appendChild(row);
    }
    table.appendChild(body);
    section.appendChild(table);
    return section;
  }

  function render(report, asOf) {
    const output = $("output");
    output.replaceChildren();
    $("status").textContent =
      "As of " + asOf.toISOString().replace("T", " ").slice(0, 19) + " UTC: " +
      report.items_scanned + " items since " + report.since.replace("T", " ").replace("Z", " UTC") +
      ", " + report.would_alert.length + " stories would have alerted.";
    output.appendChild(stories("Would alert", report.would_alert, "would-alert"));
    output.appendChild(counts("Items each term hit", report.terms, "term-counts"));
    output.appendChild(counts("Items each exclude vetoed", report.excluded, "exclude-counts"));
    if ($("compare").value) {
      output.appendChild(stories("Added against " + $("compare").value, report.diff.added, "added"));
      output.appendChild(
        stories("Removed against " + $("compare").value, report.diff.removed, "removed"),
      );
    }
  }

  function problems(messages) {
    const output = $("output");
    output.replaceChildren();
    $("status").textContent = "The definition is not valid yet:";
    const ul = el("ul", undefined, "warn");
    ul.id = "problems";
    messages.forEach((m) => ul.appendChild(el("li", m)));
    output.appendChild(ul);
  }

  async function run() {
    const def = definition();
    $("toml").value = toml(def);
    const mine = ++latest;
    if (def.terms.length === 0) {
      $("output").replaceChildren();
      $("status").textContent = "Type a term to see what it would have alerted on.";
      return;
    }
    $("status").textContent = "Running…";
    const request = { watchlist: def, since: $("since").value };
    if ($("compare").value) request.compare = $("compare").value;
    let answer;
    let body;
    try {
      answer = await fetch("/api/v1/backtest", {
        method: "POST",
        headers: { "content-type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(request),
      });
      const text = await answer.text();
      try {
        body = JSON.parse(text);
      } catch (_) {
        body = { error: text.slice(0, 300) };
      }
    } catch (err) {
      if (mine === latest) $("status").textContent = "The daemon did not answer: " + err;
      return;
    }
    if (mine !== latest) {
      return; // a newer run is on its way
    }
    if (answer.status === 401) {
      $("output").replaceChildren();
      $("status").textContent = "The session has ended: ";
      const again = el("a", "sign in again");
      again.href = "/login";
      $("status").appendChild(again);
    } else if (answer.ok) {
      render(body, new Date());
    } else if (body && body.problems) {
      problems(body.problems);
    } else {
      $("status").textContent = (body && body.error) || "The backtest failed (" + answer.status + ").";
    }
  }

  function soon() {
    $("toml").value = toml(definition());
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  }

  // A configured watch-list fills the form with its definition.
  $("compare").addEventListener("change", () => {
    const option = $("compare").selectedOptions[0];
    if (!option || !option.value) {
      $("name").value = "playground";
      soon();
      return;
    }
    const data = (key, fallback) => {
      try {
        return JSON.parse(option.dataset[key]) || fallback;
      } catch (_) {
        return fallback;
      }
    };
    $("name").value = option.value;
    $("terms").value = data("terms", []).join("\n");
    const al = data("aliases", {});
    $("aliases").value = Object.keys(al).map((t) => t + " = " + al[t].join(", ")).join("\n");
    $("query").value = option.dataset.query || "";
    $("exclude").value = data("exclude", []).join("\n");
    const fields = data("fields", []);
    form.querySelectorAll('input[name="fields"]').forEach((box) => {
      box.checked = fields.includes(box.value);
    });
    $("languages").value = data("languages", []).join(", ");
    $("acronyms_exact").checked = option.dataset.acronymsExact !== "false";
    soon();
  });
  form.addEventListener("input", (event) => {
    if (event.target.id !== "compare") soon();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run();
  });
  $("copy").addEventListener("click", async () => {
    const text = $("toml").value;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      $("toml").select();
      if (!document.execCommand("copy")) {
        $("copied").textContent = "Select the text and copy it.";
        return;
      }
    }
    $("copied").textContent = "Copied.";
    setTimeout(() => {
      $("copied").textContent = "";
    }, 3000);
  });
  $("toml").value = toml(definition());
})();
