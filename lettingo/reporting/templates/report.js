(function () {
  "use strict";
  function readData(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function num(x, digits) { return (typeof x === "number") ? x.toFixed(digits === undefined ? 3 : digits) : "—"; }
  function rating(x) { return (typeof x === "number") ? String(Math.round(x * 10) / 10) : "?"; }
  function verdictNode(v) {
    var p = el("p", "verdict");
    if (!v) { p.textContent = "not judged"; return p; }
    p.appendChild(el("span", v.correct ? "ok" : "bad", v.correct ? "correct" : "wrong"));
    var rest = " · score " + num(v.score);
    if (!v.valid) rest += " · output could not be parsed";
    if (v.prediction) rest += " · " + v.prediction;
    p.appendChild(document.createTextNode(rest));
    return p;
  }
  function card(cls, heading, profile, extra) {
    var box = el("div", "card " + cls);
    box.appendChild(el("h4", null, heading));
    if (!profile) { box.appendChild(el("p", "empty", "no profile")); return box; }
    box.appendChild(verdictNode(profile.verdict));
    if (extra) box.appendChild(el("p", "verdict", extra));
    box.appendChild(el("div", "text", profile.text === "" ? "(empty profile)" : profile.text));
    if (profile.id) box.appendChild(el("p", "verdict", profile.id + (profile.model ? " · " + profile.model : "")));
    return box;
  }
  function itemList(items) {
    var list = el("ol", "items");
    items.forEach(function (it) {
      var li = el("li");
      li.appendChild(el("span", "title", it.title));
      li.appendChild(el("span", "rating", " — rated " + rating(it.rating)));
      if (it.review) li.appendChild(el("div", "review", it.review));
      list.appendChild(li);
    });
    return list;
  }
  function setHash(id) {
    try { history.replaceState(null, "", "#user=" + encodeURIComponent(id)); } catch (e) { /* file: URLs */ }
  }
  function hashUser() {
    var m = /^#user=(.*)$/.exec(window.location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
  }

  var browser = readData("browser-data");
  var select = document.getElementById("user-select"), panel = document.getElementById("user-panel");
  if (browser && select && panel) {
    var users = {};
    browser.users.forEach(function (u) { users[u.id] = u; });
    var showUser = function (id) {
      var u = users[id];
      if (!u) return false;
      select.value = id;
      panel.setAttribute("data-user", id);
      clear(panel);
      panel.appendChild(el("h3", null, u.id + " (user " + u.user + ")"));
      var cols = el("div", "cols"), left = el("div"), right = el("div");
      var more = u.history_total > u.history.length ? " (the last " + u.history.length + ")" : "";
      left.appendChild(el("h4", null, "Profile window: " + u.history_total + " items, oldest first" + more));
      left.appendChild(itemList(u.history));
      right.appendChild(el("h4", null, "Recent window: " + u.recent.length + " items"));
      right.appendChild(itemList(u.recent));
      right.appendChild(el("h4", null, "Target"));
      var target = el("p");
      target.appendChild(el("strong", null, u.target.title));
      target.appendChild(document.createTextNode(" — rated " + rating(u.target.rating) + ", label " + u.label));
      right.appendChild(target);
      if (u.no_profile) {
        right.appendChild(el("h4", null, "Without a profile (10H)"));
        right.appendChild(verdictNode(u.no_profile));
      }
      cols.appendChild(left); cols.appendChild(right); panel.appendChild(cols);
      var cards = el("div", "cards");
      cards.appendChild(card("base", "base profile", u.base));
      cards.appendChild(card("aligned", "aligned profile (LettinGo)", u.aligned));
      panel.appendChild(cards);
      if (u.others.length) {
        panel.appendChild(el("h4", null, "Other profiles (baseline prompts, further samples)"));
        var others = el("div", "cards");
        u.others.forEach(function (p) { others.appendChild(card("other", p.method, p)); });
        panel.appendChild(others);
      }
      return true;
    };
    select.addEventListener("change", function () { showUser(select.value); setHash(select.value); });
    var fromHash = function () {
      var id = hashUser();
      if (id === null) return false;
      if (showUser(id)) return true;
      panel.insertBefore(el("p", "empty", "User " + id + " from the address is not in this page."), panel.firstChild);
      return false;
    };
    window.addEventListener("hashchange", fromHash);
    if (!showUser(select.value)) showUser(browser.users[0].id);
    if (fromHash()) document.getElementById("browser").scrollIntoView();
  }

  var pairs = readData("pairs-data");
  var pairSelect = document.getElementById("pair-user-select"), pairPanel = document.getElementById("pair-panel");
  if (pairs && pairSelect && pairPanel) {
    var pairUsers = {};
    pairs.users.forEach(function (u) { pairUsers[u.id] = u; });
    var showPairs = function (id) {
      var u = pairUsers[id];
      if (!u) return;
      pairPanel.setAttribute("data-user", id);
      clear(pairPanel);
      var head = "user " + u.id + ": " + u.total + " pair" + (u.total === 1 ? "" : "s");
      if (u.pairs.length < u.total) head += " (" + u.pairs.length + " shown)";
      pairPanel.appendChild(el("h3", null, head));
      u.pairs.forEach(function (p, i) {
        pairPanel.appendChild(el("h4", null, "Pair " + (i + 1) + " · " + p.task + " · margin " + num(p.margin)));
        var cards = el("div", "cards");
        cards.appendChild(card("chosen", "chosen", p.chosen));
        cards.appendChild(card("rejected", "rejected", p.rejected));
        pairPanel.appendChild(cards);
      });
    };
    pairSelect.addEventListener("change", function () { showPairs(pairSelect.value); });
    showPairs(pairSelect.value);
  }
})();
