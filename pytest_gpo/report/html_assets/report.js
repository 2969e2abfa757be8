// pytest-gpo HTML report: draws the embedded JSON (id "gpo-data") with the DOM API only.
// Every value goes into the page as text (createTextNode / textContent), never as markup.
(function () {
  "use strict";
  var PAGE = 100;
  // the SVG namespace, read from the page's empty <svg> so that the file holds no URL at all
  var SVG = document.getElementById("gpo-svg").namespaceURI;
  var data = JSON.parse(document.getElementById("gpo-data").textContent);
  var app = document.getElementById("app");

  // Controls and bidi overrides are shown as escapes (\u202e), as in the terminal and the
  // markdown report: an answer must not reorder or hide what the page shows around it.
  var CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
  function shown(text) {
    return String(text).replace(CONTROLS, function (c) {
      return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4);
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      if (key === "text") node.textContent = shown(attrs[key]);
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(shown(child)) : child);
    });
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    var key;
    for (key in attrs) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(value) {
    if (value === null || value === undefined) return "-";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  function table(headers, rows, className) {
    var head = el("tr", {}, headers.map(function (h) { return el("th", { text: h }); }));
    var body = rows.map(function (row) {
      return el("tr", {}, row.map(function (cell) {
        return cell instanceof Node ? el("td", {}, [cell]) : el("td", { text: show(cell) });
      }));
    });
    return el("table", { className: className || "" }, [el("thead", {}, [head]), el("tbody", {}, body)]);
  }

  // -- summary -------------------------------------------------------------------------------
  var STATUS = {
    pass: "pass", no_baseline: "pass (no baseline)", improved: "improved",
    below_threshold: "below threshold", regressed: "regressed", error: "error",
    invalid: "invalid suite file", not_run: "not run"
  };

  function summary() {
    var t = data.totals;
    var cards = [
      ["suites", String(t.suites)], ["passed", String(t.passed)], ["failed", String(t.failed)],
      ["errored", String(t.errored)], ["model calls", t.texts.calls],
      ["cache hits", t.texts.cache_hits], ["tokens", t.texts.tokens], ["cost", t.texts.cost]
    ].map(function (c) {
      return el("div", { className: "card" }, [el("span", { className: "num", text: c[1] }),
        el("span", { className: "label", text: c[0] })]);
    });
    var section = el("section", { id: "overview" }, data.suites.length ? [el("div", { className: "cards" }, cards)] : []);
    if (data.suites.length) {
      var rows = data.suites.map(function (s) {
        var link = el("a", { href: "#cases", className: "suite-link", text: s.suite });
        link.addEventListener("click", function () { state.suite = "suite:" + s.suite; state.page = 0; suiteSelect.value = state.suite; draw(); });
        var verdict = el("span", { className: "badge " + (s.passed ? "ok" : "bad"), text: STATUS[s.status] || s.status });
        return [link, verdict, s.texts.score, s.texts.threshold, s.texts.baseline, s.texts.p,
          s.texts.cases, s.texts.flipped, s.model || "-", s.texts.calls, s.texts.cache_hits,
          s.texts.tokens, s.texts.cost];
      });
      section.appendChild(el("h2", { text: "Suites" }));
      section.appendChild(table(["suite", "verdict", "score", "threshold", "baseline (Δ)", "p",
        "cases", "flipped", "model", "calls", "cache hits", "tokens", "cost"], rows, "suites"));
      data.suites.forEach(function (s) {
        // the message already holds every note: each line once
        var message = s.verdict.message || [];
        var lines = message.length ? message : (s.verdict.notes || []);
        if (!s.passed && lines.length) {
          section.appendChild(el("details", { className: "notes" }, [
            el("summary", { text: s.suite + ": " + (STATUS[s.status] || s.status) }),
            el("pre", { text: lines.join("\n") })]));
        }
      });
    }
    return section;
  }

  // -- optimizations -------------------------------------------------------------------------
  function diffBlock(text) {
    var pre = el("pre", { className: "diff" });
    text.replace(/\n$/, "").split("\n").forEach(function (line) {
      var cls = line.charAt(0) === "+" ? "add" : line.charAt(0) === "-" ? "del" : line.charAt(0) === "@" ? "hunk" : "";
      if (line.indexOf("+++") === 0 || line.indexOf("---") === 0) cls = "file";
      pre.appendChild(el("span", { className: cls, text: line + "\n" }));
    });
    return pre;
  }

  function wordDiff(words) {
    var p = el("p", { className: "words" });
    words.forEach(function (w) {
      var tag = w[0] === "del" ? "del" : w[0] === "ins" ? "ins" : "span";
      p.appendChild(el(tag, { text: w[1] }));
      p.appendChild(document.createTextNode(" "));
    });
    return p;
  }

  function chart(points, title) {
    var W = 560, H = 240, L = 44, R = 16, T = 16, B = 36;
    var maxT = points.length ? points[points.length - 1].t || 1 : 1;
    function x(t) { return L + (W - L - R) * t / maxT; }
    function y(v) { return T + (H - T - B) * (1 - v); }
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", class: "chart" });
    root.appendChild(svg("title", {}, title));
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      root.appendChild(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, v.toFixed(2)));
    });
    points.forEach(function (p) {
      root.appendChild(svg("text", { x: x(p.t), y: H - B + 16, "text-anchor": "middle", class: "tick" }, String(p.t)));
    });
    root.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "tick" }, "step"));
    [["best", "best"], ["current", "current"]].forEach(function (series) {
      var key = series[0];
      var coords = points.map(function (p) { return x(p.t).toFixed(1) + "," + y(p[key]).toFixed(1); });
      root.appendChild(svg("polyline", { points: coords.join(" "), class: "line " + key }));
      points.forEach(function (p) {
        var dot = svg("circle", { cx: x(p.t), cy: y(p[key]), r: 3, class: "dot " + key });
        dot.appendChild(svg("title", {}, series[1] + " eval score after step " + p.t + ": " + p[key].toFixed(3)));
        root.appendChild(dot);
      });
    });
    var legend = el("p", { className: "legend" }, [el("span", { className: "key best", text: "best eval score so far" }), " ",
      el("span", { className: "key current", text: "current prompt's eval score" })]);
    return el("figure", {}, [root, legend]);
  }

  function optimization(o, i) {
    var box = el("section", { className: "optimization", id: "optimization-" + i }, [
      el("h2", { text: "GPO: " + o.suite }),
      el("p", {}, [el("span", { className: "badge " + (o.accepted ? "ok" : "bad"), text: o.accepted ? "accepted" : "not accepted" }), " " + o.reason]),
    ]);
    if (o.stopped) box.appendChild(el("p", { text: "Stopped early: " + o.stopped }));
    box.appendChild(el("h3", { text: "Scores" }));
    box.appendChild(table(["split", "cases", "before", "after", "change"], o.scores.map(function (s) {
      return [s.split, s.cases, s.before, s.after, s.change];
    })));
    box.appendChild(el("h3", { text: "Prompt" }));
    if (o.diff) {
      box.appendChild(el("p", { text: o.words_changed + " words changed:" }));
      box.appendChild(wordDiff(o.words));
      box.appendChild(diffBlock(o.diff));
      box.appendChild(el("div", { className: "sides" }, [
        el("div", {}, [el("h4", { text: "before" }), el("pre", { className: "prompt", text: o.before })]),
        el("div", {}, [el("h4", { text: "after" }), el("pre", { className: "prompt", text: o.after })])]));
    } else {
      box.appendChild(el("p", { text: "No change: no prompt scored above the initial one on eval." }));
    }
    // a step without a finite score (none in practice) is left out of the chart
    var points = o.chart.filter(function (p) { return typeof p.best === "number" && typeof p.current === "number"; });
    if (points.length) {
      box.appendChild(el("h3", { text: "Eval score per step" }));
      box.appendChild(chart(points, o.suite + ": eval score per step"));
    }
    box.appendChild(el("h3", { text: "Calls, tokens, cost" }));
    box.appendChild(table(["model", "provider calls", "cache hits", "tokens", "cost"], o.usage, "usage"));
    var flips = o.cases.filter(function (c) { return c.flipped; }).length;
    var link = el("a", { href: "#cases", text: "the " + o.cases.length + " held-out cases, before and after (" + flips + " flipped)" });
    link.addEventListener("click", function () { state.suite = "opt:" + o.suite; state.page = 0; suiteSelect.value = state.suite; draw(); });
    box.appendChild(el("p", {}, ["See ", link, "."]));
    return box;
  }

  // -- cases ---------------------------------------------------------------------------------
  function sampleErrored(samples) {
    return samples.some(function (r) { return !!r.error; });
  }

  var items = [];
  data.suites.forEach(function (s) {
    s.cases.forEach(function (c) {
      items.push({ kind: "suite", group: "suite:" + s.suite, suite: s.suite, id: c.id, ref: c,
        failed: !c.passed, errored: !!c.error || sampleErrored(c.samples),
        changed: !!c.texts.change, flipped: false });
    });
  });
  data.optimizations.forEach(function (o) {
    o.cases.forEach(function (c) {
      items.push({ kind: "opt", group: "opt:" + o.suite, suite: o.suite + " (GPO held-out test)", id: c.id, ref: c,
        failed: !c.after.passed, errored: sampleErrored(c.after.samples),
        changed: false, flipped: c.flipped });
    });
  });

  function haystack(item) {
    if (item.hay === undefined) {
      var c = item.ref;
      var parts = [item.suite, item.id];
      if (item.kind === "suite") {
        parts.push(show(c.vars), show(c.expected), c.reason || "", c.error || "");
        c.samples.forEach(function (r) { parts.push(r.output || "", r.reason || "", r.error || ""); });
      } else {
        parts.push(c.expected);
        [c.before, c.after].forEach(function (side) {
          side.samples.forEach(function (r) { parts.push(r.output || "", r.reason || "", r.error || ""); });
        });
      }
      item.hay = parts.join("\n").toLowerCase();
    }
    return item.hay;
  }

  var FILTERS = [
    ["all", "all", function () { return true; }],
    ["failed", "failed", function (it) { return it.failed; }],
    ["errored", "errored", function (it) { return it.errored; }],
    ["changed", "changed vs baseline", function (it) { return it.changed; }],
    ["flipped", "flipped by optimization", function (it) { return it.flipped; }]
  ];
  var state = { filter: "all", suite: "", query: "", page: 0 };

  function matching() {
    var test = FILTERS.filter(function (f) { return f[0] === state.filter; })[0][2];
    var q = state.query.toLowerCase();
    return items.filter(function (it) {
      return test(it) && (!state.suite || it.group === state.suite) && (!q || haystack(it).indexOf(q) >= 0);
    });
  }

  function samplesBlock(samples) {
    return el("div", { className: "samples" }, samples.map(function (r) {
      var score = typeof r.score === "number" ? r.score.toFixed(3) : "-";
      var head = "#" + (r.sample + 1) + " " + (r.passed ? "pass" : "fail") + " " + score;
      return el("div", { className: "sample" }, [
        el("div", { className: "sample-head" }, [el("span", { className: "badge " + (r.passed ? "ok" : "bad"), text: head }),
          r.reason ? el("span", { className: "reason", text: r.reason }) : null]),
        r.error ? el("pre", { className: "error", text: "error: " + r.error }) : null,
        el("pre", { className: "output", text: r.output || "" })]);
    }));
  }

  function varsBlock(vars) {
    var keys = Object.keys(vars || {});
    if (!keys.length) return el("pre", { className: "vars", text: "-" });
    return el("div", { className: "vars" }, keys.map(function (k) {
      return el("div", { className: "var" }, [el("span", { className: "var-name", text: k }), el("pre", { text: show(vars[k]) })]);
    }));
  }

  function caseNode(it) {
    var c = it.ref;
    var passed = it.kind === "suite" ? c.passed : c.after.passed;
    var status = it.errored ? "error" : passed ? "pass" : "fail";
    var badges = [el("span", { className: "badge " + (status === "pass" ? "ok" : "bad"), text: status })];
    if (it.changed) badges.push(el("span", { className: "badge change", text: c.texts.change }));
    if (it.flipped) badges.push(el("span", { className: "badge flip", text: c.after.passed ? "fixed" : "broken" }));
    var score = it.kind === "suite" ? c.texts.score : c.before.score + " → " + c.after.score;
    var verdict = it.kind === "suite" ? c.texts.verdict : c.before.verdict + " → " + c.after.verdict;
    var head = el("summary", {}, badges.concat([
      el("span", { className: "case-suite", text: it.suite }),
      el("span", { className: "case-id", text: it.id }),
      el("span", { className: "case-score", text: "score " + score }),
      el("span", { className: "case-verdict", text: verdict })]));
    var body;
    if (it.kind === "suite") {
      body = el("div", { className: "case-body" }, [
        it.changed ? el("p", { className: "change-text", text: c.texts.change_text }) : null,
        el("h4", { text: "vars" }), varsBlock(c.vars),
        el("h4", { text: "expected" }), el("pre", { className: "expected", text: c.texts.expected }),
        c.error ? el("pre", { className: "error", text: "error: " + c.error }) : null,
        el("h4", { text: c.samples.length > 1 ? "samples (" + c.rule + ")" : "output" }),
        samplesBlock(c.samples)]);
    } else {
      body = el("div", { className: "case-body" }, [
        el("h4", { text: "expected" }), el("pre", { className: "expected", text: c.expected }),
        el("div", { className: "sides" }, [
          el("div", {}, [el("h4", { text: "before (initial prompt): " + c.before.verdict }), samplesBlock(c.before.samples)]),
          el("div", {}, [el("h4", { text: "after (optimized prompt): " + c.after.verdict }), samplesBlock(c.after.samples)])])]);
    }
    var node = el("details", { className: "case " + status, "data-suite": it.suite, "data-case": it.id }, [head, body]);
    if (status !== "pass" || it.flipped) node.open = true;
    return node;
  }

  var list = el("div", { id: "case-list" });
  var count = el("p", { id: "case-count" });
  var pager = el("div", { className: "pager" });
  var search = el("input", { id: "search", type: "search", placeholder: "search case id, vars, expected, output, reason", "aria-label": "search cases" });
  var suiteSelect = el("select", { id: "suite-filter", "aria-label": "suite" }, [el("option", { value: "", text: "every suite" })]);
  data.suites.forEach(function (s) { suiteSelect.appendChild(el("option", { value: "suite:" + s.suite, text: s.suite })); });
  data.optimizations.forEach(function (o) { suiteSelect.appendChild(el("option", { value: "opt:" + o.suite, text: o.suite + " (GPO held-out test)" })); });
  var buttons = FILTERS.map(function (f) {
    var n = items.filter(f[2]).length;
    var b = el("button", { type: "button", id: "filter-" + f[0], "data-filter": f[0], text: f[1] + " (" + n + ")" });
    b.addEventListener("click", function () { state.filter = f[0]; state.page = 0; draw(); });
    return b;
  });
  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.query = search.value; state.page = 0; draw(); }, 120);
  });
  // Enter (or leaving the field) searches at once
  search.addEventListener("change", function () { clearTimeout(timer); state.query = search.value; state.page = 0; draw(); });
  suiteSelect.addEventListener("change", function () { state.suite = suiteSelect.value; state.page = 0; draw(); });

  function pageButton(label, page, enabled) {
    var b = el("button", { type: "button", className: "page", text: label });
    b.disabled = !enabled;
    b.addEventListener("click", function () { state.page = page; draw(); window.scrollTo(0, list.offsetTop - 80); });
    return b;
  }

  function draw() {
    var found = matching();
    var pages = Math.max(1, Math.ceil(found.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE;
    var shown = found.slice(start, start + PAGE);
    var frag = document.createDocumentFragment();
    shown.forEach(function (it) { frag.appendChild(caseNode(it)); });
    list.textContent = "";
    list.appendChild(frag);
    if (!found.length) list.appendChild(el("p", { className: "empty", text: "No case matches." }));
    count.textContent = found.length
      ? "Showing " + (start + 1) + "–" + (start + shown.length) + " of " + found.length + " matching cases (" + items.length + " in all)"
      : "0 of " + items.length + " cases match";
    count.setAttribute("data-matching", String(found.length));
    buttons.forEach(function (b) { b.className = b.getAttribute("data-filter") === state.filter ? "active" : ""; });
    pager.textContent = "";
    if (pages > 1) {
      pager.appendChild(pageButton("← previous", state.page - 1, state.page > 0));
      pager.appendChild(el("span", { text: " page " + (state.page + 1) + " of " + pages + " " }));
      pager.appendChild(pageButton("next →", state.page + 1, state.page < pages - 1));
    }
  }

  // -- the page ------------------------------------------------------------------------------
  app.textContent = "";
  app.appendChild(summary());
  data.optimizations.forEach(function (o, i) { app.appendChild(optimization(o, i)); });
  app.appendChild(el("section", { id: "cases" }, [
    el("h2", { text: "Cases" }),
    el("div", { className: "toolbar" }, [el("div", { className: "filters", role: "group" }, buttons), suiteSelect, search]),
    count, list, pager]));
  data.sections.forEach(function (s) {
    app.appendChild(el("section", { className: "extra" }, [el("h2", { text: s.title }), el("pre", { text: s.text })]));
  });
  var meta = Object.keys(data.meta).map(function (k) { return [k, show(data.meta[k])]; });
  if (meta.length) {
    app.appendChild(el("section", { id: "meta" }, [el("h2", { text: "Run details" }), table(["key", "value"], meta)]));
  }
  draw();
  document.documentElement.setAttribute("data-ready", "1");
  window.gpoReadyAt = performance.now();
})();
