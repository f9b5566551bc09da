/* lci inspector: confirm dangerous forms, keep the pages live by polling. No framework. */
(function () {
  "use strict";

  document.addEventListener("submit", function (ev) {
    var message = ev.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) ev.preventDefault();
  });

  var dot = document.getElementById("live-status");

  function every(ms, step) {
    function tick() {
      if (document.hidden) return window.setTimeout(tick, ms);
      step().then(function () { mark(true); }, function () { mark(false); })
        .then(function () { window.setTimeout(tick, ms); });
    }
    window.setTimeout(tick, ms);
  }

  function mark(ok) {
    if (dot) dot.classList.toggle("stale", !ok);
  }

  function get(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.redirected || r.status === 401) {  // logged out: go and log in again
        window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname));
        throw new Error("logged out");
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r;
    });
  }

  /* -- the sessions table ------------------------------------------------------------ */

  var table = document.getElementById("sessions");
  if (table) {
    var last = "";
    every(2000, function () {
      return get(table.dataset.src).then(function (r) { return r.json(); }).then(function (data) {
        var text = JSON.stringify(data.sessions);
        if (text === last) return;
        last = text;
        renderRows(table.tBodies[0], data.sessions);
        document.getElementById("no-sessions").hidden = data.sessions.length > 0;
      });
    });
  }

  function cell(row, text, cls) {
    var td = row.insertCell();
    td.textContent = String(text);
    if (cls) td.className = cls;
    return td;
  }

  function renderRows(body, sessions) {
    var rows = sessions.map(function (s) {
      var tr = document.createElement("tr");
      tr.dataset.id = s.id;
      var link = document.createElement("a");
      link.href = s.url;
      link.textContent = s.id;
      tr.insertCell().appendChild(link);
      cell(tr, s.thread, "thread").title = s.thread;
      var state = document.createElement("span");
      state.className = "state state-" + s.state;
      state.textContent = s.state;
      tr.insertCell().appendChild(state);
      [s.age, s.idle, s.expires, s.memory, s.cpu, s.executions, s.files].forEach(function (v) {
        cell(tr, v, "num");
      });
      return tr;
    });
    body.replaceChildren.apply(body, rows);
  }

  /* -- one session: summary, files and the execution timeline ------------------------- */

  var live = document.getElementById("live");
  if (live) {
    every(1000, function () {
      return get(live.dataset.src).then(function (r) { return r.text(); }).then(merge);
    });
  }

  function swap(id, fresh) {
    var old = document.getElementById(id);
    var next = fresh.getElementById(id);
    if (old && next && old.innerHTML !== next.innerHTML) old.replaceWith(next);
  }

  function merge(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    swap("summary", fresh);
    swap("files", fresh);
    var timeline = document.getElementById("timeline");
    var incoming = fresh.getElementById("timeline");
    var heading = incoming.querySelector("h2");
    if (heading.innerHTML !== timeline.querySelector("h2").innerHTML) {
      timeline.querySelector("h2").replaceWith(heading);
    }
    var added = false;
    Array.prototype.forEach.call(incoming.querySelectorAll("article.exe"), function (article) {
      var old = document.getElementById(article.id);
      if (!old) {
        timeline.appendChild(article);
        added = true;
      } else if (old.dataset.sig !== article.dataset.sig) {
        old.replaceWith(article);
      }
    });
    var empty = timeline.querySelector(".empty");
    if (empty && timeline.querySelector("article.exe")) empty.remove();
    var summary = document.getElementById("summary");
    var isLive = summary && summary.dataset.live === "1";
    document.querySelectorAll("button.needs-live").forEach(function (b) { b.disabled = !isLive; });
    if (added && atBottom) window.scrollTo(0, document.body.scrollHeight);
  }
})();
