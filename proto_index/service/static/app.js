"use strict";
// proto-index web UI: plain DOM, no framework. Every string from the store or a user goes through
// textContent or an attribute setter, never through HTML parsing.
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { info: null, rows: [], selected: -1, labels: [] };

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function setStatus(id, text, isError) {
    const s = $(id);
    s.textContent = text;
    s.classList.toggle("error", !!isError);
  }

  async function api(method, path, body, raw) {
    const headers = {};
    const token = localStorage.getItem("proto-index-token");
    if (token && method !== "GET") headers["authorization"] = "Bearer " + token;
    let payload;
    if (raw !== undefined) { payload = raw; headers["content-type"] = raw.type || "application/octet-stream"; }
    else if (body !== undefined) { payload = JSON.stringify(body); headers["content-type"] = "application/json"; }
    const r = await fetch(path, { method, headers, body: payload });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || r.status + " " + r.statusText);
    return data;
  }

  function fmt(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }
  function span(row) { return fmt(row.start_s, 1) + "–" + fmt(row.end_s, 1) + " s"; }

  function player(windowId) {
    const id = encodeURIComponent(windowId);
    return el("span", { class: "media" }, [
      el("img", { class: "spec", loading: "lazy", alt: "spectrogram", width: "240", height: "64",
        src: "/api/spectrogram/window/" + id }),
      el("audio", { controls: "", preload: "none", src: "/api/audio/window/" + id }),
    ]);
  }

  // ---- search ----------------------------------------------------------------------------------

  function showHits(hits) {
    const list = $("results");
    list.replaceChildren();
    for (const h of hits) {
      const similar = el("button", { type: "button", class: "similar", text: "similar",
        onclick: () => run(() => api("GET", "/api/search/window/" + h.window_id + "?k=" + k()), "similar to window " + h.window_id) });
      list.append(el("li", { class: "hit", dataset: { windowId: h.window_id } }, [
        el("span", { class: "score", text: fmt(h.score, 3) }),
        el("span", { class: "path", text: h.path }),
        el("span", { class: "span", text: span(h) }),
        el("span"), player(h.window_id), similar,
      ]));
    }
  }

  function k() { return Math.max(1, Math.min(200, parseInt($("search-k").value, 10) || 10)); }

  async function run(request, what) {
    setStatus("search-status", "searching " + what + "…");
    try {
      const data = await request();
      showHits(data.hits);
      setStatus("search-status", data.hits.length + " results for " + what);
    } catch (e) {
      setStatus("search-status", e.message, true);
    }
  }

  function searchFile(file) {
    if (!file) return;
    run(() => api("POST", "/api/search/audio?k=" + k(), undefined, file), "the file " + file.name);
  }

  // ---- review ----------------------------------------------------------------------------------

  function verdictText(v) {
    if (!v) return "not reviewed";
    const what = v.verdict === "relabel" ? "relabel → " + v.corrected_label : v.verdict;
    return what + (v.reviewer ? " by " + v.reviewer : "");
  }

  function windowRow(w, i) {
    const state_ = el("span", { class: "verdict-state " + (w.verdict ? w.verdict.verdict : ""), text: verdictText(w.verdict) });
    const relabel = el("select", { class: "relabel-to", "aria-label": "true label" },
      state.labels.filter((l) => l !== w.label).map((l) => el("option", { value: l, text: l })));
    const buttons = el("span", { class: "verdicts" }, [
      el("button", { type: "button", class: "verdict-right", text: "right (r)", onclick: () => judge(i, "right") }),
      el("button", { type: "button", class: "verdict-wrong", text: "wrong (w)", onclick: () => judge(i, "wrong") }),
      relabel,
      el("button", { type: "button", class: "verdict-relabel", text: "relabel (l)", onclick: () => judge(i, "relabel") }),
    ]);
    return el("li", { class: "win", dataset: { windowId: w.window_id }, onclick: () => select(i) }, [
      el("span", { class: "score", text: "m " + fmt(w.margin, 3) }),
      el("span", { class: "path", text: w.path }),
      el("span", { class: "span", text: span(w) }),
      el("span", { class: "label", text: w.label + (w.other_label && w.other_label !== w.label ? " (other set: " + w.other_label + ")" : "") }),
      el("span", {}, [player(w.window_id), buttons]),
      state_,
    ]);
  }

  function select(i) {
    const items = $("windows").children;
    if (!items.length) return;
    state.selected = Math.max(0, Math.min(items.length - 1, i));
    for (const [j, li] of Array.from(items).entries()) li.classList.toggle("selected", j === state.selected);
    items[state.selected].scrollIntoView({ block: "nearest" });
  }

  async function judge(i, verdict) {
    const w = state.rows[i];
    const li = $("windows").children[i];
    const reviewer = $("reviewer").value.trim();
    if (!reviewer) { setStatus("review-status", "enter your name as reviewer first", true); $("reviewer").focus(); return; }
    const body = { window_id: w.window_id, label: w.label, verdict, reviewer, environment: $("review-env").value, source: "web",
      expected_id: w.verdict ? w.verdict.id : null };  // another reviewer's change since: 409, nothing stored
    if (verdict === "relabel") body.corrected_label = li.querySelector(".relabel-to").value;
    try {
      const data = await api("POST", "/api/annotations", body);
      w.verdict = data.annotation;
      const s = li.querySelector(".verdict-state");
      s.textContent = verdictText(w.verdict);
      s.className = "verdict-state " + verdict;
      setStatus("review-status", "stored: window " + w.window_id + " " + verdictText(w.verdict));
      select(i + 1);
    } catch (e) {
      setStatus("review-status", e.message, true);
    }
  }

  async function loadWindows() {
    const q = new URLSearchParams({ prototypes: $("review-prototypes").value, environment: $("review-env").value,
      order: $("review-order").value, limit: "200" });
    if ($("review-label").value) q.set("label", $("review-label").value);
    if ($("review-unreviewed").checked) q.set("unreviewed", "true");
    if ($("review-compare").value) q.set("compare", $("review-compare").value);
    setStatus("review-status", "classifying…");
    $("windows").replaceChildren();  // no stale rows (or verdicts) while the new ones load
    state.rows = [];
    state.selected = -1;
    try {
      const data = await api("GET", "/api/classify/windows?" + q);
      state.rows = data.windows;
      state.labels = data.labels;
      const chosen = $("review-label").value;
      $("review-label").replaceChildren(el("option", { value: "", text: "all" }),
        ...data.labels.map((l) => el("option", { value: l, text: l + " (" + data.counts[l] + ")" })));
      $("review-label").value = chosen;
      $("windows").replaceChildren(...data.windows.map(windowRow));
      setStatus("review-status", data.total + " windows (" + data.adaptation + " adaptation); showing " + data.windows.length);
      select(0);
    } catch (e) {
      setStatus("review-status", e.message, true);
    }
  }

  async function build(ev) {
    ev.preventDefault();
    const body = { class_set: $("build-class-set").value, method: $("build-method").value,
      n: parseInt($("build-n").value, 10) || 35, replace: $("build-replace").checked };
    if ($("build-name").value.trim()) body.name = $("build-name").value.trim();
    setStatus("review-status", "building prototypes…");
    try {
      const ps = await api("POST", "/api/prototypes", body);
      await loadInfo();
      $("review-prototypes").value = ps.name;
      setStatus("review-status", "built " + ps.name);
      await loadWindows();
    } catch (e) {
      setStatus("review-status", e.message, true);
    }
  }

  function onKey(ev) {
    if (document.getElementById("review").hidden) return;
    if (ev.target.matches("input, select, textarea")) return;
    const i = state.selected;
    const keys = {
      j: () => select(i + 1), k: () => select(i - 1), r: () => judge(i, "right"), w: () => judge(i, "wrong"),
      l: () => judge(i, "relabel"),
      p: () => { const a = $("windows").children[i]?.querySelector("audio"); if (a) (a.paused ? a.play() : a.pause()); },
    };
    if (keys[ev.key] && i >= 0) { ev.preventDefault(); keys[ev.key](); }
  }

  // ---- setup -----------------------------------------------------------------------------------

  function options(select, names) {
    const old = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    if (names.includes(old)) select.value = old;
  }

  async function loadInfo() {
    const info = await api("GET", "/api/info");
    state.info = info;
    $("store-info").textContent = info.model.name + " · " + info.counts.recordings + " recordings, " +
      info.counts.windows + " windows" + (info.server.read_only ? " · read-only" : "");
    $("token-box").hidden = !info.server.writes_need_token;
    options($("review-prototypes"), info.prototype_sets.map((p) => p.name));
    options($("review-env"), info.environments.map((e) => e.name));
    const compared = $("review-compare").value;
    $("review-compare").replaceChildren(el("option", { value: "", text: "none" }),
      ...info.prototype_sets.map((p) => el("option", { value: p.name, text: p.name })));
    $("review-compare").value = compared;
    options($("build-class-set"), info.class_sets.map((c) => c.name));
  }

  function tab(name) {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.tab === name);
    $("search").hidden = name !== "search";
    $("review").hidden = name !== "review";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("reviewer").value = localStorage.getItem("proto-index-reviewer") || "";
    $("reviewer").addEventListener("change", () => localStorage.setItem("proto-index-reviewer", $("reviewer").value.trim()));
    $("token").value = localStorage.getItem("proto-index-token") || "";
    $("token").addEventListener("change", () => localStorage.setItem("proto-index-token", $("token").value));
    for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => tab(t.dataset.tab));
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("search-text").value.trim();
      if (text) run(() => api("POST", "/api/search/text", { text, k: k() }), JSON.stringify(text));
    });
    $("search-file").addEventListener("change", (ev) => searchFile(ev.target.files[0]));
    const drop = $("drop");
    drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); searchFile(ev.dataTransfer.files[0]); });
    $("review-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadWindows(); });
    $("build-form").addEventListener("submit", build);
    document.addEventListener("keydown", onKey);
    loadInfo().then(() => { document.body.dataset.ready = "1"; })
      .catch((e) => setStatus("search-status", e.message, true));
  });
})();
