/* proto-index review report: filtering, sorting, paging and review decisions, in plain JavaScript.
   Every value from the classification reaches the page as text (textContent, properties), never as HTML. */
(function () {
  "use strict";
  var PAGE = 50;
  var meta = JSON.parse(document.getElementById("report-meta").textContent);
  var rows = JSON.parse(document.getElementById("report-rows").textContent);
  // Keys that come from input (environments, labels, paths) never index a plain object: "__proto__",
  // "constructor" or "toString" would hit Object.prototype. Sets and Maps only.
  var decisions = new Map();  // row index -> {verdict, corrected}
  var rowIds = new Set(rows.map(function (r) { return r.i; }));
  var labelSet = new Set(meta.labels);
  var verdictSet = new Set(meta.verdicts);
  var page = 0;
  var byId = function (id) { return document.getElementById(id); };
  var el = function (tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  var fmt = function (x) { return x === null || x === undefined ? "" : x.toFixed(4); };

  function fillSelect(select, values) {
    values.forEach(function (v) { var o = el("option", v); o.value = v; select.appendChild(o); });
  }
  var unique = function (key) {
    var seen = new Set();
    rows.forEach(function (r) { seen.add(r[key]); });
    return Array.from(seen).sort();
  };
  fillSelect(byId("f-env"), unique("env"));
  fillSelect(byId("f-label"), unique("label"));

  var num = function (x, missing) { return x === null || x === undefined ? missing : x; };
  var sorters = new Map(Object.entries({
    "group": function (a, b) {
      return a.env < b.env ? -1 : a.env > b.env ? 1 : a.label < b.label ? -1 : a.label > b.label ? 1 :
        num(a.margin, Infinity) - num(b.margin, Infinity) || a.i - b.i;
    },
    "margin-asc": function (a, b) { return num(a.margin, Infinity) - num(b.margin, Infinity) || a.i - b.i; },
    "margin-desc": function (a, b) { return num(b.margin, -Infinity) - num(a.margin, -Infinity) || a.i - b.i; },
    "score-asc": function (a, b) { return num(a.score, Infinity) - num(b.score, Infinity) || a.i - b.i; },
    "score-desc": function (a, b) { return num(b.score, -Infinity) - num(a.score, -Infinity) || a.i - b.i; },
    "path": function (a, b) {
      return a.path < b.path ? -1 : a.path > b.path ? 1 : (parseFloat(a.start) || 0) - (parseFloat(b.start) || 0) || a.i - b.i;
    }
  }));

  function visible() {
    var env = byId("f-env").value, label = byId("f-label").value;
    var text = byId("f-text").value.toLowerCase(), state = byId("f-verdict").value;
    var out = rows.filter(function (r) {
      if (env && r.env !== env) return false;
      if (label && r.label !== label) return false;
      if (text && r.path.toLowerCase().indexOf(text) < 0) return false;
      if (state === "none" && decisions.has(r.i)) return false;
      if (state === "any" && !decisions.has(r.i)) return false;
      return true;
    });
    return out.sort(sorters.get(byId("sort").value) || sorters.get("group"));
  }

  function reviewCell(r) {
    var td = el("td", null, "review");
    var name = "v" + r.i;
    var corrected = el("select");
    corrected.className = "corrected";
    fillSelect(corrected, meta.labels.filter(function (l) { return l !== r.label; }));
    meta.verdicts.forEach(function (v) {
      var lab = el("label", null, "verdict");
      var input = document.createElement("input");
      input.type = "radio"; input.name = name; input.value = v;
      input.checked = !!(decisions.has(r.i) && decisions.get(r.i).verdict === v);
      input.addEventListener("change", function () {
        decisions.set(r.i, {verdict: v, corrected: v === "relabel" ? corrected.value : ""});
        corrected.disabled = v !== "relabel";
        changed();
      });
      lab.appendChild(input); lab.appendChild(document.createTextNode(" " + v));
      td.appendChild(lab);
    });
    var d = decisions.get(r.i);
    if (d && d.corrected) corrected.value = d.corrected;
    corrected.disabled = !(d && d.verdict === "relabel");
    corrected.addEventListener("change", function () {
      var d = decisions.get(r.i);
      if (d && d.verdict === "relabel") { d.corrected = corrected.value; changed(); }
    });
    td.appendChild(corrected);
    var clear = el("button", "clear", "clear");
    clear.type = "button";
    clear.addEventListener("click", function () { decisions.delete(r.i); render(); changed(); });
    td.appendChild(clear);
    return td;
  }

  function rowElement(r, n) {
    var tr = el("tr");
    tr.dataset.row = String(r.i);
    tr.appendChild(el("td", String(n)));
    tr.appendChild(el("td", r.env));
    tr.appendChild(el("td", r.label, "label"));
    var top = el("td", null, "top");
    var ol = el("ol");
    r.top.forEach(function (t) { ol.appendChild(el("li", t[0] + " " + fmt(t[1]))); });
    top.appendChild(ol);
    tr.appendChild(top);
    tr.appendChild(el("td", fmt(r.margin), "margin"));
    var listen = el("td");
    var audio = document.createElement("audio");
    audio.controls = true; audio.preload = "metadata"; audio.src = r.audio;
    listen.appendChild(audio);
    if (r.cut) listen.appendChild(el("div", "first seconds only", "note"));
    tr.appendChild(listen);
    var spec = el("td");
    var img = document.createElement("img");
    img.className = "spec"; img.src = r.spec; img.alt = "spectrogram";
    spec.appendChild(img);
    tr.appendChild(spec);
    var src = el("td", null, "source");
    var name = r.path.split("/").pop();
    var a = el("a", name);
    a.href = r.href; a.title = r.path;
    src.appendChild(a);
    if (r.start !== "") src.appendChild(el("div", (+r.start).toFixed(1) + "-" + (+r.end).toFixed(1) + " s", "when"));
    tr.appendChild(src);
    tr.appendChild(reviewCell(r));
    return tr;
  }

  function render() {
    var list = visible();
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    page = Math.min(page, pages - 1);
    var body = document.querySelector("#rows tbody");
    body.textContent = "";
    var first = page * PAGE;
    list.slice(first, first + PAGE).forEach(function (r, k) { body.appendChild(rowElement(r, first + k + 1)); });
    byId("page-info").textContent = list.length ?
      "rows " + (first + 1) + "-" + Math.min(first + PAGE, list.length) + " of " + list.length + " (page " + (page + 1) + " of " + pages + ")" :
      "no rows match";
    byId("prev").disabled = page === 0;
    byId("next").disabled = page >= pages - 1;
  }

  function count() {
    var n = decisions.size;
    byId("decided").textContent = n + (n === 1 ? " decision" : " decisions");
  }

  // Decisions live in the browser's storage (localStorage) until the reviewer clears them, so a reload or
  // a closed tab loses nothing. Every file: page shares one storage, hence the key made from the report's
  // content (meta.storageKey). What is read back is input like any other: only rows, verdicts and labels
  // of this report are restored.
  var store = (function () {
    try {
      var s = window.localStorage, probe = meta.storageKey + ":probe";
      s.setItem(probe, "1");
      s.removeItem(probe);
      return s;
    } catch (e) {
      return null;
    }
  })();
  var savedNote = function (text) { byId("saved").textContent = text; };
  var state = {downloaded: null};  // when the decisions were last downloaded (ISO time)

  function restore() {
    decisions.clear();
    state.downloaded = null;
    if (!store) return 0;
    var saved;
    try {
      saved = JSON.parse(store.getItem(meta.storageKey) || "null");
    } catch (e) {
      saved = null;
    }
    if (!saved || typeof saved !== "object" || !Array.isArray(saved.decisions)) return 0;
    saved.decisions.forEach(function (d) {
      if (!Array.isArray(d) || d.length !== 3) return;
      var i = d[0], verdict = d[1], corrected = d[2];
      if (typeof i !== "number" || !rowIds.has(i) || typeof verdict !== "string" || !verdictSet.has(verdict)) return;
      if (verdict === "relabel" ? typeof corrected !== "string" || !labelSet.has(corrected) : corrected !== "") return;
      decisions.set(i, {verdict: verdict, corrected: corrected});
    });
    var when = typeof saved.downloaded === "string" ? new Date(saved.downloaded) : null;
    if (when && !isNaN(when.getTime())) state.downloaded = when.toISOString();
    return decisions.size;
  }

  function save() {
    if (!store) {
      savedNote("not kept by this browser (its storage is off): download before closing the page");
      return;
    }
    try {
      if (decisions.size === 0 && !state.downloaded) {
        store.removeItem(meta.storageKey);
      } else {
        var list = [];
        decisions.forEach(function (d, i) { list.push([i, d.verdict, d.verdict === "relabel" ? d.corrected : ""]); });
        store.setItem(meta.storageKey, JSON.stringify({decisions: list, downloaded: state.downloaded,
                                                       saved: new Date().toISOString()}));
      }
      note();
    } catch (e) {
      savedNote("could not be kept by this browser (" + e.name + "): download before closing the page");
    }
  }

  function note() {
    if (!store) return save();
    var n = decisions.size;
    savedNote(n === 0 ? "" : "kept in this browser" +
              (state.downloaded ? "; last downloaded " + state.downloaded.replace("T", " ").slice(0, 19) + " UTC" : "; not downloaded yet"));
  }

  function changed() {
    count();
    save();
  }

  // A text cell that a spreadsheet would run as a formula gets a leading ' (annotate strips exactly one).
  var textCell = function (v) {
    var s = v === null || v === undefined ? "" : String(v);
    return /^[=+\-@\t\r']/.test(s) ? "'" + s : s;
  };
  function csvCell(v) {
    var s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function decisionsCsv() {
    var lines = [meta.columns.join(",")];
    rows.filter(function (r) { return decisions.has(r.i); }).sort(function (a, b) { return a.i - b.i; }).forEach(function (r) {
      var d = decisions.get(r.i);
      lines.push([textCell(r.path), r.start, r.end, textCell(r.env), textCell(r.label), d.verdict,
                  d.verdict === "relabel" ? textCell(d.corrected) : ""].map(csvCell).join(","));
    });
    return lines.join("\r\n") + "\r\n";
  }

  byId("download").addEventListener("click", function () {
    var blob = new Blob([decisionsCsv()], {type: "text/csv;charset=utf-8"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "review.csv";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
     state.downloaded = new Date().toISOString();
    save();
  });
  byId("forget").addEventListener("click", function () {
    if (!decisions.size && !state.downloaded) return;
    var n = decisions.size;
    if (!window.confirm("Forget the " + n + (n === 1 ? " decision" : " decisions") +
                        " this browser keeps for this report? Download them first to keep them.")) return;
    decisions.clear();
    state.downloaded = null;
    if (store) {
      try { store.removeItem(meta.storageKey); } catch (e) { /* nothing kept: nothing to forget */ }
    }
    render();
    count();
    note();
  });
  // The same report open in another tab: show what it decided.
  window.addEventListener("storage", function (e) {
    if (e.key !== meta.storageKey) return;
    restore();
    render();
    count();
    note();
  });
  ["f-env", "f-label", "f-verdict", "sort"].forEach(function (id) {
    byId(id).addEventListener("change", function () { page = 0; render(); });
  });
  byId("f-text").addEventListener("input", function () { page = 0; render(); });
  byId("prev").addEventListener("click", function () { page -= 1; render(); });
  byId("next").addEventListener("click", function () { page += 1; render(); });
  window.protoIndexReport = {decisionsCsv: decisionsCsv};
  restore();
  render();
  count();
  note();
})();
