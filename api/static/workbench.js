// 三高共管 workbench: record an outcome, reassign or snooze without reloading the page.
// Without this script the same forms post and redirect back; nothing here is needed to read a page.
(function () {
  "use strict";

  var live = null;
  var timer = null;

  function say(message, isError) {
    if (!live) { return; }
    live.textContent = message;
    live.className = isError ? "live err" : "live";
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { live.textContent = ""; }, 4000);
  }

  function setCount(element, delta) {
    if (!element) { return; }
    var n = parseInt(element.getAttribute("data-total") || element.textContent, 10);
    if (isNaN(n)) { return; }
    n = Math.max(0, n + delta);
    if (element.hasAttribute("data-total")) {
      element.setAttribute("data-total", String(n));
      element.textContent = element.textContent.replace(/\d+/, String(n));
    } else {
      element.textContent = String(n);
    }
  }

  function removeItem(item) {
    var group = item.closest(".group");
    item.classList.add("leaving");
    setTimeout(function () {
      item.remove();
      if (group) {
        setCount(group.querySelector("[data-group-count]"), -1);
        if (!group.querySelector(".item")) { group.remove(); }
      }
      setCount(document.querySelector(".count[data-total]"), -1);
    }, 260);
  }

  function submit(event) {
    var form = event.target;
    var action = form.getAttribute("data-action");
    if (!action || !window.fetch) { return; }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var csrf = document.body.getAttribute("data-csrf") || "";
    if (button) { button.disabled = true; }
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": csrf
      },
      body: new URLSearchParams(new FormData(form)).toString()
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false, message: response.statusText }; });
    }).then(function (answer) {
      if (button) { button.disabled = false; }
      if (!answer.ok) {
        say(answer.message || "Error", true);
        return;
      }
      var item = form.closest(".item");
      var details = form.closest("details");
      if (details) { details.open = false; }
      if (action === "reassign") {
        var who = item && item.querySelector("[data-assignee]");
        if (who) { who.textContent = answer.assignee || ""; }
      } else if (answer.listed) {
        // Still on the list (urgent work whose patient was not reached: due again shortly).
      } else {
        if (item) { removeItem(item); }
        // A patient who moved away or died has every task closed: drop the others shown too.
        var open = answer.patient_open_tasks || [];
        document.querySelectorAll('.item[data-patient="' + answer.patient_id + '"]').forEach(function (other) {
          var id = parseInt(other.getAttribute("data-task"), 10);
          if (other !== item && open.indexOf(id) < 0) { removeItem(other); }
        });
      }
      say(answer.message, false);
    }).catch(function () {
      if (button) { button.disabled = false; }
      form.removeAttribute("data-action");
      form.submit(); // the network failed: fall back to the plain form post
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    live = document.querySelector("[data-live]");
    document.addEventListener("submit", submit);
    document.documentElement.classList.add("js");
  });
})();
