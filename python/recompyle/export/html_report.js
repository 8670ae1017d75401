// recompyle's HTML report: builds the page from the JSON in #recompyle-data.
// Program text (file names, callee texts, source) only ever reaches the page through
// textContent and attribute values, never as markup.
"use strict";
// A failure of this script is said on the page, not only in the console.
window.addEventListener("error", function (ev) {
  const app = document.getElementById("app");
  const note = document.createElement("div");
  note.className = "warn";
  note.textContent = "This report could not be drawn completely: " + ev.message;
  app.insertBefore(note, app.firstChild);
});
(function () {
  const RAW = JSON.parse(document.getElementById("recompyle-data").textContent);
  const META = RAW.meta;
  const FILES = RAW.files;
  const SF = {};
  RAW.site_fields.forEach(function (name, i) { SF[name] = i; });
  const SITES = RAW.sites.map(function (r, i) {
    return {
      id: i, file: r[SF.file], line: r[SF.line], col: r[SF.col], end_line: r[SF.end_line],
      end_col: r[SF.end_col], callee: r[SF.callee], caller: r[SF.caller], module: r[SF.module],
      calls: r[SF.calls], total: r[SF.total_ns], self: r[SF.self_ns], max: r[SF.max_ns],
      raised: r[SF.raised], untimed: r[SF.untimed],
      mean: r[SF.calls] ? r[SF.total_ns] / r[SF.calls] : 0,
    };
  });
  const app = document.getElementById("app");
  app.textContent = "";

  // ---- helpers -------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) {
      if (k === "class") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  // Control characters (ANSI escapes, NUL...) shown as their Unicode pictures, one code unit
  // for one, so column arithmetic on a line is unchanged.
  function visible(s) {
    return s.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, function (c) {
      const n = c.charCodeAt(0);
      return String.fromCharCode(n === 0x7f ? 0x2421 : 0x2400 + n);
    });
  }
  function oneLine(s) { return visible(s.replace(/\s+/g, " ")); }
  function dur(ns) {
    if (ns === null || ns === undefined) return "\u2013";
    if (ns >= 1e9) return (ns / 1e9).toFixed(3) + " s";
    if (ns >= 1e6) return (ns / 1e6).toFixed(3) + " ms";
    if (ns >= 1e3) return (ns / 1e3).toFixed(3) + " \u00b5s";
    return Math.round(ns) + " ns";
  }
  function pct(x) { return (100 * x).toFixed(x < 0.001 ? 3 : 1) + "%"; }
  function where(s) { return FILES[s.file].display + ":" + s.line + ":" + (s.col + 1); }
  function hashHue(text) {
    let h = 0;
    for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
    return Math.abs(h) % 360;
  }
  // The time all shares are taken of: the run's wall time, else the longest root.
  let BASE = META.wall_ns || 0;
  RAW.roots.forEach(function (r) { BASE = Math.max(BASE, r.total_ns); });
  SITES.forEach(function (s) { BASE = Math.max(BASE, s.total); });
  BASE = BASE || 1;
  function heat(share) {
    const x = Math.sqrt(Math.min(1, Math.max(0, share)));
    return { bg: "hsla(" + Math.round(55 - 55 * x) + ",95%,52%," + (0.16 + 0.6 * x).toFixed(2) + ")",
             edge: "hsl(" + Math.round(55 - 55 * x) + ",90%,40%)" };
  }

  // ---- call tree -----------------------------------------------------------------------
  const NF = {};
  RAW.node_fields.forEach(function (name, i) { NF[name] = i; });
  const WIDTH = RAW.node_fields.length;
  const NODES = [];
  const ALL = { id: 0, site: -1, label: "all threads and tasks", total: 0, self: 0, calls: null,
                children: [], parent: null, depth: 0 };
  NODES.push(ALL);
  RAW.roots.forEach(function (root, ri) {
    const label = root.kind === "thread" ? root.name : root.name + " (" + root.kind + ")";
    const top = { id: NODES.length, site: -1, label: label, root: ri, total: root.total_ns,
                  calls: null, children: [], parent: ALL, depth: 1 };
    NODES.push(top);
    ALL.children.push(top);
    ALL.total += root.total_ns;
    const flat = root.nodes;
    const stack = [[top, -1]];  // [node, children still to read; -1: the root's, unbounded]
    for (let p = 0; p < flat.length; p += WIDTH) {
      while (stack.length > 1 && stack[stack.length - 1][1] === 0) stack.pop();
      const parent = stack[stack.length - 1];
      const n = { id: NODES.length, site: flat[p + NF.site], calls: flat[p + NF.calls],
                  total: flat[p + NF.total_ns], self: flat[p + NF.self_ns],
                  max: flat[p + NF.max_ns], raised: flat[p + NF.raised],
                  untimed: flat[p + NF.untimed], children: [],
                  parent: parent[0], depth: parent[0].depth + 1 };
      NODES.push(n);
      parent[0].children.push(n);
      if (parent[1] > 0) parent[1] -= 1;
      stack.push([n, flat[p + NF.children]]);
    }
    let below = 0;
    top.children.forEach(function (c) { below += c.total; });
    top.self = Math.max(0, top.total - below);
  });
  NODES.forEach(function (n) { n.children.sort(function (a, b) { return b.total - a.total; }); });
  function nodeLabel(n) { return n.site < 0 ? n.label : oneLine(SITES[n.site].callee); }

  // ---- header --------------------------------------------------------------------------
  let totalCalls = 0;
  const modules = {};
  SITES.forEach(function (s) { totalCalls += s.calls; modules[s.module] = true; });
  const header = el("header");
  header.appendChild(el("h1", null, "recompyle profile: " + visible(META.program)));
  const dl = el("dl");
  function fact(name, value, id) {
    const d = el("div");
    d.appendChild(el("dt", null, name));
    d.appendChild(el("dd", id ? { id: id } : null, value));
    dl.appendChild(d);
  }
  fact("command", visible(META.argv), "meta-argv");
  fact("Python", META.python);
  if (META.pid !== null) fact("pid", String(META.pid));
  fact("wall time", META.wall_ns === null ? "not recorded" : dur(META.wall_ns), "meta-wall");
  fact("calls", totalCalls.toLocaleString("en-US"), "meta-calls");
  fact("call sites", SITES.length.toLocaleString("en-US"), "meta-sites");
  fact("threads and tasks", String(RAW.roots.length));
  const modNames = Object.keys(modules).sort();
  fact("instrumented", modNames.length + (modNames.length === 1 ? " module: " : " modules: ") +
       visible(modNames.slice(0, 12).join(", ")) + (modNames.length > 12 ? ", \u2026" : "") +
       " (" + FILES.length + (FILES.length === 1 ? " file)" : " files)"), "meta-modules");
  if (META.dropped) fact("timeline", META.dropped + " events dropped");
  header.appendChild(dl);
  app.appendChild(header);
  const troubled = FILES.filter(function (f) {
    return f.status === "changed" || f.status === "missing" || f.status === "unavailable";
  });
  if (troubled.length) {
    const w = el("div", { class: "warn", id: "file-warnings" });
    w.appendChild(el("div", null, "Source files differ from when the report was written:"));
    const ul = el("ul");
    troubled.forEach(function (f) { ul.appendChild(el("li", null, visible(f.display) + ": " + f.note)); });
    w.appendChild(ul);
    app.appendChild(w);
  }
  const nav = el("nav");
  [["#flame-section", "Flame graph"], ["#table-section", "Call sites"], ["#source-section", "Source"]]
    .forEach(function (a) { nav.appendChild(el("a", { href: a[0] }, a[1])); });
  app.appendChild(nav);
  const tip = el("div", { id: "tip" });
  document.body.appendChild(tip);

  function showTip(ev, lines) {
    tip.textContent = "";
    lines.forEach(function (l, i) {
      if (i) tip.appendChild(document.createTextNode("\n"));
      if (l[0]) tip.appendChild(el("b", null, l[0] + " "));
      tip.appendChild(document.createTextNode(l[1]));
    });
    tip.style.display = "block";
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    const y = ev.clientY + 16 + tip.offsetHeight > window.innerHeight ? ev.clientY - tip.offsetHeight - 8 : ev.clientY + 16;
    tip.style.left = Math.max(0, x) + "px";
    tip.style.top = Math.max(0, y) + "px";
  }
  function hideTip() { tip.style.display = "none"; }
  function siteLines(s, n) {
    const calls = n ? n.calls : s.calls, total = n ? n.total : s.total;
    const lines = [["", visible(s.callee)], ["at", where(s) + "  in " + visible(s.caller)],
                   ["calls", calls.toLocaleString("en-US")],
                   ["total", dur(total) + "  (" + pct(total / BASE) + ")"],
                   ["self", dur(n ? n.self : s.self)], ["mean", dur(calls ? total / calls : 0)],
                   ["max", dur(n ? n.max : s.max)], ["raised", String(n ? n.raised : s.raised)]];
    const untimed = n ? n.untimed : s.untimed;
    if (untimed) lines.push(["untimed", untimed + " of the calls (nested over 200 deep: their time is their caller's)"]);
    if (n) lines.push(["site (all paths)", s.calls + " calls, " + dur(s.total)]);
    return lines;
  }

  // ---- flame graph ---------------------------------------------------------------------
  const fsec = el("section", { id: "flame-section" });
  fsec.appendChild(el("h2", null, "Flame graph (call-site tree per thread and task; click to zoom)"));
  const fbar = el("div", { class: "bar" });
  const search = el("input", { type: "search", id: "search", placeholder: "search frames (callee, file, caller)" });
  const reset = el("button", { id: "reset-zoom", type: "button" }, "reset zoom");
  const searchInfo = el("span", { class: "info", id: "search-info" });
  fbar.appendChild(search); fbar.appendChild(reset); fbar.appendChild(searchInfo);
  fsec.appendChild(fbar);
  const selected = el("div", { id: "selected", class: "info" });
  fsec.appendChild(selected);
  const flame = el("div", { id: "flame" });
  fsec.appendChild(flame);
  app.appendChild(fsec);

  const ROW = 18;
  let zoom = ALL;
  let query = "";
  let selectedNode = null;
  function matches(n) {
    if (!query || n.site < 0) return false;
    const s = SITES[n.site];
    return (s.callee + "\u0000" + FILES[s.file].display + ":" + s.line + "\u0000" + s.caller + "\u0000" + s.module)
      .toLowerCase().indexOf(query) >= 0;
  }
  function frameColour(n) {
    if (n.site < 0) return "";
    // One colour per callee text (a function called from several sites keeps its colour),
    // warm hues as flame graphs have; darker where calls raised.
    const s = SITES[n.site];
    const hue = 10 + hashHue(s.callee) % 60;
    return "hsl(" + hue + ",80%," + (n.raised ? "58%" : "72%") + ")";
  }
  function drawFlame() {
    flame.textContent = "";
    if (!RAW.roots.length) {
      flame.appendChild(el("div", { class: "empty" }, "This report has no call tree (report version " +
        META.version + "): the table and the source hold its sites."));
      flame.style.height = "";
      return;
    }
    const width = flame.clientWidth || 1000;
    const minFrac = 1 / width;  // narrower than a pixel: not drawn
    const ancestors = [];
    for (let a = zoom.parent; a; a = a.parent) ancestors.unshift(a);
    let maxDepth = 0;
    function frame(n, x, w, row, extra) {
      // no label where it could not show a letter: a big profile has thousands of slivers
      const d = el("div", { class: "fr" + extra, "data-node": String(n.id) }, w * width >= 14 ? nodeLabel(n) : null);
      d.style.left = (100 * x) + "%";
      d.style.width = (100 * w) + "%";
      d.style.top = (row * ROW) + "px";
      const c = frameColour(n);
      if (c) d.style.background = c;
      if (matches(n)) d.classList.add("match");
      if (n === selectedNode) d.classList.add("sel");
      flame.appendChild(d);
      maxDepth = Math.max(maxDepth, row);
    }
    ancestors.forEach(function (a, i) { frame(a, 0, 1, i, " anc" + (a.site < 0 ? " root" : "")); });
    const base = ancestors.length;
    const stack = [[zoom, 0, 1, base]];
    while (stack.length) {
      const item = stack.pop();
      const n = item[0], x = item[1], w = item[2], row = item[3];
      frame(n, x, w, row, n.site < 0 ? " root" : "");
      let sum = 0;
      n.children.forEach(function (c) { sum += c.total; });
      const scale = n.total > 0 ? w / Math.max(n.total, sum) : 0;
      let cx = x;
      for (let i = 0; i < n.children.length; i++) {
        const c = n.children[i], cw = c.total * scale;
        if (cw >= minFrac) stack.push([c, cx, cw, row + 1]);
        cx += cw;
      }
    }
    flame.style.height = ((maxDepth + 1) * ROW + 2) + "px";
    updateSearchInfo();
  }
  function updateSearchInfo() {
    flame.classList.toggle("searching", !!query);
    if (!query) { searchInfo.textContent = ""; return; }
    let count = 0, time = 0;
    const walk = [[zoom, false]];
    while (walk.length) {
      const item = walk.pop(), n = item[0];
      const m = matches(n);
      if (m) count += 1;
      if (m && !item[1]) time += n.total;
      n.children.forEach(function (c) { walk.push([c, item[1] || m]); });
    }
    searchInfo.textContent = count + " matching frames, " + pct(zoom.total ? time / zoom.total : 0) + " of the view";
  }
  function frameAt(ev) {
    const t = ev.target.closest ? ev.target.closest(".fr") : null;
    return t ? NODES[+t.getAttribute("data-node")] : null;
  }
  flame.addEventListener("mousemove", function (ev) {
    const n = frameAt(ev);
    if (!n) { hideTip(); return; }
    if (n.site < 0) {
      showTip(ev, [["", n.label], ["total", dur(n.total) + "  (" + pct(n.total / BASE) + ")"],
                   ["self", dur(n.self)]]);
    } else {
      showTip(ev, siteLines(SITES[n.site], n));
    }
  });
  flame.addEventListener("mouseleave", hideTip);
  flame.addEventListener("click", function (ev) {
    const n = frameAt(ev);
    if (!n) return;
    zoom = n;
    selectedNode = n;
    selected.textContent = "";
    if (n.site >= 0) {
      const s = SITES[n.site];
      selected.appendChild(document.createTextNode("selected: " + oneLine(s.callee) + " at " + visible(where(s)) + " "));
      const b = el("button", { type: "button", id: "selected-source" }, "show source");
      b.addEventListener("click", function () { showSite(s.id, true); });
      selected.appendChild(b);
      showSite(s.id, false);
    } else {
      selected.textContent = "selected: " + n.label;
    }
    drawFlame();
  });
  reset.addEventListener("click", function () { zoom = ALL; selectedNode = null; selected.textContent = ""; drawFlame(); });
  let searchTimer = 0;
  search.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { query = search.value.trim().toLowerCase(); drawFlame(); }, 60);
  });
  let resizeTimer = 0;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawFlame, 150); });

  // ---- table ---------------------------------------------------------------------------
  const tsec = el("section", { id: "table-section" });
  tsec.appendChild(el("h2", null, "Call sites"));
  const tbar = el("div", { class: "bar" });
  const filter = el("input", { type: "search", id: "filter", placeholder: "filter: callee, file, caller, module" });
  const fileSel = el("select", { id: "filter-file" });
  const modSel = el("select", { id: "filter-module" });
  fileSel.appendChild(el("option", { value: "" }, "all files"));
  FILES.forEach(function (f, i) { fileSel.appendChild(el("option", { value: String(i) }, visible(f.display))); });
  modSel.appendChild(el("option", { value: "" }, "all modules"));
  modNames.forEach(function (m) { modSel.appendChild(el("option", { value: m }, visible(m))); });
  const tinfo = el("span", { class: "info", id: "table-info" });
  [filter, fileSel, modSel, tinfo].forEach(function (e) { tbar.appendChild(e); });
  tsec.appendChild(tbar);
  const COLS = [
    ["callee", "callee", false], ["site", "site", false], ["caller", "caller", false],
    ["calls", "calls", true], ["total", "total", true], ["self", "self", true],
    ["mean", "mean", true], ["max", "max", true], ["raised", "raised", true],
  ];
  const table = el("table", { id: "sites" });
  const thead = el("thead"), hrow = el("tr");
  COLS.forEach(function (c) {
    hrow.appendChild(el("th", { "data-key": c[0], class: c[2] ? "num" : "" }, c[1]));
  });
  thead.appendChild(hrow);
  table.appendChild(thead);
  const tbody = el("tbody");
  table.appendChild(tbody);
  tsec.appendChild(table);
  const more = el("button", { type: "button", id: "show-all", hidden: "" }, "show all rows");
  tsec.appendChild(more);
  app.appendChild(tsec);
  let sortKey = "total", sortDesc = true, rowLimit = 500;
  function sortValue(s, key) {
    if (key === "site") return FILES[s.file].display + "\u0000" + String(s.line).padStart(9, "0") + String(s.col).padStart(9, "0");
    if (key === "self") return s.self === null ? -1 : s.self;
    return s[key];
  }
  function drawTable() {
    const text = filter.value.trim().toLowerCase();
    const fileIx = fileSel.value === "" ? -1 : +fileSel.value;
    const mod = modSel.value;
    let rows = SITES.filter(function (s) {
      if (fileIx >= 0 && s.file !== fileIx) return false;
      if (mod && s.module !== mod) return false;
      if (!text) return true;
      return (s.callee + "\u0000" + where(s) + "\u0000" + s.caller + "\u0000" + s.module).toLowerCase().indexOf(text) >= 0;
    });
    rows.sort(function (a, b) {
      const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
      const c = x < y ? -1 : x > y ? 1 : a.id - b.id;
      return sortDesc ? -c : c;
    });
    Array.prototype.forEach.call(hrow.children, function (th) {
      if (th.getAttribute("data-key") === sortKey) th.setAttribute("aria-sort", sortDesc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    tbody.textContent = "";
    const shown = rows.slice(0, rowLimit);
    const frag = document.createDocumentFragment();
    shown.forEach(function (s) {
      const tr = el("tr", { "data-site": String(s.id) });
      tr.appendChild(el("td", { class: "code" }, oneLine(s.callee)));
      tr.appendChild(el("td", { class: "code" }, visible(where(s))));
      tr.appendChild(el("td", { class: "code" }, visible(s.caller)));
      tr.appendChild(el("td", { class: "num" }, s.calls.toLocaleString("en-US")));
      tr.appendChild(el("td", { class: "num" }, dur(s.total)));
      tr.appendChild(el("td", { class: "num" }, dur(s.self)));
      tr.appendChild(el("td", { class: "num" }, dur(s.mean)));
      tr.appendChild(el("td", { class: "num" }, dur(s.max)));
      tr.appendChild(el("td", { class: "num" }, String(s.raised)));
      frag.appendChild(tr);
    });
    tbody.appendChild(frag);
    tinfo.textContent = rows.length === SITES.length ? rows.length + " sites" : rows.length + " of " + SITES.length + " sites";
    if (rows.length > shown.length) {
      more.hidden = false;
      more.textContent = "show all " + rows.length + " rows (" + shown.length + " shown)";
    } else more.hidden = true;
  }
  hrow.addEventListener("click", function (ev) {
    const th = ev.target.closest("th");
    if (!th) return;
    const key = th.getAttribute("data-key");
    const numeric = COLS.some(function (c) { return c[0] === key && c[2]; });
    if (key === sortKey) sortDesc = !sortDesc;
    else { sortKey = key; sortDesc = numeric; }
    drawTable();
  });
  [filter, fileSel, modSel].forEach(function (e) { e.addEventListener(e.tagName === "SELECT" ? "change" : "input", drawTable); });
  more.addEventListener("click", function () { rowLimit = Infinity; drawTable(); });
  tbody.addEventListener("click", function (ev) {
    const tr = ev.target.closest("tr");
    if (tr) showSite(+tr.getAttribute("data-site"), true);
  });

  // ---- source --------------------------------------------------------------------------
  const ssec = el("section", { id: "source-section" });
  ssec.appendChild(el("h2", null, "Source (each call site marked at its columns, coloured by its share of the time)"));
  const sbar = el("div", { class: "bar" });
  const srcSel = el("select", { id: "source-file" });
  const sinfo = el("span", { class: "info", id: "source-info" });
  sbar.appendChild(srcSel); sbar.appendChild(sinfo);
  ssec.appendChild(sbar);
  const src = el("div", { id: "src" });
  ssec.appendChild(src);
  app.appendChild(ssec);
  const sitesOf = FILES.map(function () { return []; });
  const fileTime = FILES.map(function () { return 0; });
  SITES.forEach(function (s) { sitesOf[s.file].push(s.id); fileTime[s.file] = Math.max(fileTime[s.file], s.total); });
  srcSel.appendChild(el("option", { value: "" }, "choose a file\u2026"));
  FILES.map(function (f, i) { return i; })
    .sort(function (a, b) { return fileTime[b] - fileTime[a] || a - b; })
    .forEach(function (i) {
      const f = FILES[i];
      const label = visible(f.display) + "  (" + sitesOf[i].length + " sites" +
        (f.source === null ? ", no source" : "") + (f.status === "changed" || f.status === "missing" ? ", " + f.status : "") + ")";
      srcSel.appendChild(el("option", { value: String(i) }, label));
    });
  let shownFile = -1;
  const siteSpans = {};

  // UTF-8 byte offset within a line -> index into the JavaScript (UTF-16) string.
  function byteMapper(line) {
    if (/^[\x00-\x7f]*$/.test(line)) return function (b) { return Math.min(b, line.length); };
    const bytesAt = [0];  // bytesAt[k]: bytes before UTF-16 index k (at code point starts)
    let bytes = 0;
    for (let i = 0; i < line.length; i++) {
      const cp = line.codePointAt(i);
      bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      if (cp > 0xffff) { bytesAt.push(bytes); i++; }
      bytesAt.push(bytes);
    }
    return function (b) {
      let lo = 0, hi = line.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (bytesAt[mid] < b) lo = mid + 1; else hi = mid; }
      return lo;
    };
  }
  // A light Python colouring, line by line: keywords, strings (triple-quoted ones carried
  // over lines in `state`, the open quote), comments, numbers. [start, end, class] per token.
  const KEYWORDS = new Set(("False None True and as assert async await break class continue def del " +
    "elif else except finally for from global if import in is lambda nonlocal not or pass raise " +
    "return try while with yield").split(" "));
  function lex(line, state) {
    const out = [];
    let i = 0;
    if (state) {
      const end = line.indexOf(state);
      if (end < 0) { out.push([0, line.length, "s"]); return [out, state]; }
      out.push([0, end + 3, "s"]);
      i = end + 3;
    }
    while (i < line.length) {
      const c = line[i];
      if (c === "#") { out.push([i, line.length, "c"]); break; }
      let start = i, q = i;
      if (/[A-Za-z_]/.test(c)) {
        let j = i;
        while (j < line.length && /\w/.test(line[j])) j++;
        const word = line.slice(i, j);
        if ((line[j] === "'" || line[j] === '"') && /^[rRbBfFuU]{1,2}$/.test(word)) q = j;  // a prefix
        else { if (KEYWORDS.has(word)) out.push([i, j, "k"]); i = j; continue; }
      } else if (/[0-9]/.test(c)) {
        let j = i;
        while (j < line.length && /[\w.]/.test(line[j])) j++;
        out.push([i, j, "n"]);
        i = j;
        continue;
      } else if (c !== "'" && c !== '"') { i++; continue; }
      const quote = line[q];
      if (line.substr(q, 3) === quote + quote + quote) {
        const triple = quote + quote + quote;
        const end = line.indexOf(triple, q + 3);
        if (end < 0) { out.push([start, line.length, "s"]); return [out, triple]; }
        out.push([start, end + 3, "s"]);
        i = end + 3;
        continue;
      }
      let j = q + 1;
      while (j < line.length && line[j] !== quote) j += line[j] === "\\" ? 2 : 1;
      out.push([start, Math.min(j + 1, line.length), "s"]);
      i = j + 1;
    }
    return [out, null];
  }
  function siteExtent(s) { return [s.line, s.col, s.end_line, s.end_col]; }
  function outerFirst(a, b) {
    const x = siteExtent(SITES[a]), y = siteExtent(SITES[b]);
    return x[0] - y[0] || x[1] - y[1] || y[2] - x[2] || y[3] - x[3] || a - b;
  }
  function renderSource(fi) {
    shownFile = fi;
    srcSel.value = String(fi);
    src.textContent = "";
    for (const k in siteSpans) delete siteSpans[k];
    const f = FILES[fi];
    sinfo.textContent = f.note ? visible(f.display) + ": " + f.note : "";
    if (f.source === null) {
      src.appendChild(el("div", { class: "empty" },
        "The source of " + visible(f.display) + " is not available: " +
        (f.status === "changed" ? "the file changed since the report was written, and the report holds no copy."
          : "the report holds no copy and the file cannot be read.")));
      return;
    }
    const lines = f.source.split("\n");
    if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
    const byLine = {};  // line number -> [site id, start byte, end byte or -1 (line end)]
    const starts = {};
    sitesOf[fi].forEach(function (id) {
      const s = SITES[id];
      (starts[s.line] = starts[s.line] || []).push(id);
      for (let ln = s.line; ln <= Math.min(s.end_line, lines.length); ln++) {
        const from = ln === s.line ? s.col : -2;  // -2: from the line's first non-blank
        const to = ln === s.end_line ? s.end_col : -1;
        (byLine[ln] = byLine[ln] || []).push([id, from, to]);
      }
    });
    const frag = document.createDocumentFragment();
    let lexState = null;
    lines.forEach(function (text, i) {
      const ln = i + 1;
      const row = el("div", { class: "ln", id: "L" + ln });
      row.appendChild(el("span", { class: "no" }, String(ln)));
      const code = el("span", { class: "code" });
      const shown = visible(text);
      const lexed = lex(text, lexState);
      const toks = lexed[0];
      lexState = lexed[1];
      let tk = 0;
      let pos = 0;
      // Text [pos, upto) into node, the syntax colouring's tokens as spans.
      function put(node, upto) {
        while (pos < upto) {
          while (tk < toks.length && toks[tk][1] <= pos) tk++;
          const t = toks[tk];
          if (!t || t[0] >= upto) { node.appendChild(document.createTextNode(shown.slice(pos, upto))); pos = upto; break; }
          if (t[0] > pos) { node.appendChild(document.createTextNode(shown.slice(pos, t[0]))); pos = t[0]; }
          const end = Math.min(t[1], upto);
          node.appendChild(el("span", { class: "tk-" + t[2] }, shown.slice(pos, end)));
          pos = end;
        }
      }
      const marks = byLine[ln];
      if (!marks) put(code, text.length);
      else {
        const toIndex = byteMapper(text);
        const indent = text.length - text.replace(/^\s+/, "").length;
        const ivs = marks.map(function (m) {
          const a = m[1] === -2 ? indent : toIndex(m[1]);
          const b = m[2] === -1 ? text.length : toIndex(m[2]);
          return [m[0], a, Math.max(a, b)];
        }).filter(function (v) { return v[2] > v[1]; });
        ivs.sort(function (x, y) { return x[1] - y[1] || y[2] - x[2] || outerFirst(x[0], y[0]); });
        const stack = [[code, text.length]];
        ivs.forEach(function (v) {
          while (stack.length > 1 && stack[stack.length - 1][1] <= v[1]) { const t = stack.pop(); put(t[0], t[1]); }
          const top = stack[stack.length - 1];
          put(top[0], v[1]);
          const s = SITES[v[0]], h = heat(s.total / BASE);
          const span = el("span", { class: "site", "data-site": String(s.id) });
          span.style.background = h.bg;
          span.style.setProperty("--edge", h.edge);
          top[0].appendChild(span);
          (siteSpans[s.id] = siteSpans[s.id] || []).push(span);
          stack.push([span, Math.min(v[2], top[1])]);
        });
        while (stack.length > 1) { const t = stack.pop(); put(t[0], t[1]); }
        put(code, text.length);
      }
      row.appendChild(code);
      const margin = el("span", { class: "margin" });
      (starts[ln] || []).sort(function (a, b) { return SITES[a].col - SITES[b].col || outerFirst(a, b); }).forEach(function (id) {
        const s = SITES[id], h = heat(s.total / BASE);
        let name = oneLine(s.callee);
        if (name.length > 24) name = name.slice(0, 23) + "\u2026";
        const chip = el("span", { class: "chip", "data-site": String(id) }, name + " " + dur(s.total) + " \u00d7" + s.calls);
        chip.style.background = h.bg;
        margin.appendChild(chip);
      });
      row.appendChild(margin);
      frag.appendChild(row);
    });
    src.appendChild(frag);
  }
  function highlight(id, on) {
    (siteSpans[id] || []).forEach(function (s) { s.classList.toggle("hl", on); });
    src.querySelectorAll('.chip[data-site="' + id + '"]').forEach(function (c) { c.classList.toggle("hl", on); });
  }
  function showSite(id, scrollPage) {
    const s = SITES[id];
    if (shownFile !== s.file) renderSource(s.file);
    src.querySelectorAll(".sel, .target").forEach(function (e) { e.classList.remove("sel", "target"); });
    (siteSpans[id] || []).forEach(function (sp) { sp.classList.add("sel"); });
    const row = document.getElementById("L" + s.line);
    if (row) {
      row.classList.add("target");
      src.scrollTop = Math.max(0, row.offsetTop - src.offsetTop - src.clientHeight / 3);
    }
    if (scrollPage) ssec.scrollIntoView({ block: "start" });
  }
  srcSel.addEventListener("change", function () { if (srcSel.value !== "") renderSource(+srcSel.value); });
  let hovered = -1;
  src.addEventListener("mouseover", function (ev) {
    const t = ev.target.closest(".site, .chip");
    const id = t ? +t.getAttribute("data-site") : -1;
    if (id !== hovered) { if (hovered >= 0) highlight(hovered, false); hovered = id; if (id >= 0) highlight(id, true); }
  });
  src.addEventListener("mousemove", function (ev) {
    const t = ev.target.closest(".site, .chip");
    if (t) showTip(ev, siteLines(SITES[+t.getAttribute("data-site")], null)); else hideTip();
  });
  src.addEventListener("mouseleave", function () { hideTip(); if (hovered >= 0) highlight(hovered, false); hovered = -1; });

  // ---- first view ----------------------------------------------------------------------
  drawFlame();
  drawTable();
  if (window.performance && performance.mark) performance.mark("recompyle-rendered");
  // The first file's source (thousands of lines, below the fold) after the first paint.
  const first = srcSel.options.length > 1 ? +srcSel.options[1].value : -1;
  requestAnimationFrame(function () {
    setTimeout(function () {
      if (first >= 0 && shownFile < 0) renderSource(first);
      document.body.setAttribute("data-ready", "1");
    }, 0);
  });
})();
