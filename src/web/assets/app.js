// aidmesh: what the page adds with JavaScript. Every action works without it; this
// adds local dates, live updates from /live, and the browser's geolocation.
"use strict";
(function () {
  var body = document.body, d = body.dataset;
  var lang = document.documentElement.lang || "en";

  // Dates in the browser's own time zone and language.
  var fmt = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var when = new Date(t.getAttribute("datetime"));
      if (!isNaN(when)) { t.textContent = fmt.format(when); t.title = t.getAttribute("datetime"); }
    });
  }
  localTimes(document);

  // Geohash of a position (same alphabet as the node's).
  var B32 = "0123456789bcdefghjkmnpqrstuvwxyz";
  function geohash(lat, lon, n) {
    var la = [-90, 90], lo = [-180, 180], out = "", bit = 0, ch = 0, even = true;
    while (out.length < n) {
      var r = even ? lo : la, v = even ? lon : lat, mid = (r[0] + r[1]) / 2;
      if (v >= mid) { ch = ch * 2 + 1; r[0] = mid; } else { ch = ch * 2; r[1] = mid; }
      even = !even;
      if (++bit === 5) { out += B32[ch]; bit = 0; ch = 0; }
    }
    return out;
  }
  if ("geolocation" in navigator) {
    document.querySelectorAll("button[data-geo]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        var input = document.getElementById(b.dataset.geo);
        var status = b.parentNode.querySelector(".geo-status");
        navigator.geolocation.getCurrentPosition(function (p) {
          input.value = geohash(p.coords.latitude, p.coords.longitude, +b.dataset.precision || 5);
          if (status) status.textContent = d.tGeoShared.replace("{place}", input.value);
          input.dispatchEvent(new Event("change"));
        }, function () {
          if (status) status.textContent = d.tGeoDenied; else alert(d.tGeoDenied);
        }, { maximumAge: 600000, timeout: 15000 });
      });
    });
  }

  // Live updates: the stream named by <body data-live>, with a visible indicator.
  var url = d.live, ind = document.getElementById("live-status");
  if (!url || !window.EventSource || !ind) return;
  function state(s, text) { ind.dataset.state = s; ind.textContent = text; ind.hidden = false; }
  var es = new EventSource(url);
  state("connecting", d.tConnecting);
  es.onopen = function () { state("on", d.tLive); };
  es.onerror = function () {
    state(es.readyState === EventSource.CLOSED ? "offline" : "connecting",
          es.readyState === EventSource.CLOSED ? d.tOffline : d.tConnecting);
  };
  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    var el = t.content.firstElementChild;
    localTimes(el);
    return el;
  }
  var posts = document.getElementById("posts");
  es.addEventListener("post", function (ev) {
    if (!posts || !posts.hasAttribute("data-insert")) return;
    var m = JSON.parse(ev.data), el = fragment(m.html), old = document.getElementById("p-" + m.id);
    el.classList.add("fresh");
    if (old) old.replaceWith(el); else posts.prepend(el);
    var empty = document.getElementById("empty");
    if (empty) empty.remove();
  });
  es.addEventListener("gone", function (ev) {
    var old = document.getElementById("p-" + JSON.parse(ev.data).id);
    if (old && posts && posts.contains(old)) old.remove();
  });
  var matches = document.getElementById("live-matches");
  es.addEventListener("match", function (ev) {
    if (!matches) return;
    matches.prepend(fragment(JSON.parse(ev.data).html));
    var none = document.getElementById("live-none");
    if (none) none.remove();
  });
  // Private messages: into the open conversation, and to the top of the inbox.
  var thread = document.getElementById("messages"), convs = document.getElementById("conversations");
  es.addEventListener("message", function (ev) {
    var m = JSON.parse(ev.data);
    if (thread && m.message) {
      var el = fragment(m.message), old = document.getElementById(el.id);
      if (old) old.replaceWith(el); else thread.appendChild(el);
    }
    if (convs && m.row) {
      var row = fragment(m.row), was = document.getElementById(row.id);
      if (was) was.remove();
      convs.prepend(row);
      var none = document.getElementById("no-conv");
      if (none) none.remove();
    }
  });
  es.addEventListener("missed", function () {
    if (document.getElementById("missed")) return;
    var p = document.createElement("p");
    p.id = "missed"; p.className = "banner"; p.setAttribute("role", "status");
    var a = document.createElement("a");
    a.href = location.href; a.textContent = d.tMissed;
    p.appendChild(a);
    document.getElementById("main").appendChild(p);
  });
})();
