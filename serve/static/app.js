// 12fa serve: live pages without a build step. The page follows the
// server-sent events its <body data-live> names: "log" entries are added
// to #log (as text, never as markup), and on "change" the page fetches
// itself again and swaps its <main>, unless a form in it is being filled.
(function () {
  "use strict";
  const live = document.body.dataset.live;
  if (!live || !window.EventSource) return;
  const badge = document.getElementById("live");
  const log = document.getElementById("log");

  function span(cls, text) {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function addLine(e) {
    if (!log) return;
    const li = document.createElement("li");
    li.appendChild(span("t", e.time));
    li.appendChild(span("p", e.phase));
    let text = [e.step, e.action, e.result].filter(Boolean).join(" ");
    if (e.duration) text += " (" + e.duration + ")";
    if (e.details) text += ": " + e.details;
    li.appendChild(span("d", text));
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.appendChild(li);
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  let pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(async function () {
      pending = null;
      const main = document.getElementById("main");
      const active = document.activeElement;
      if (active && main.contains(active) && active.form && active.value) {
        refresh(); // someone is typing an answer: later
        return;
      }
      try {
        const r = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
        if (!r.ok) return;
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        const next = doc.getElementById("main");
        if (next) main.replaceWith(document.adoptNode(next));
        const count = doc.getElementById("pending-count");
        const here = document.getElementById("pending-count");
        if (here && count) here.textContent = count.textContent;
        document.title = doc.title;
      } catch (_) { /* the next change tries again */ }
    }, 300);
  }

  const es = new EventSource(live);
  es.addEventListener("open", function () { if (badge) badge.hidden = false; });
  es.addEventListener("error", function () { if (badge) badge.hidden = true; });
  es.addEventListener("log", function (m) { addLine(JSON.parse(m.data)); });
  es.addEventListener("change", refresh);
})();
