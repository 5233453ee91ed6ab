// Live updates without reloading: every [data-live] element is refreshed from the same URL every few seconds,
// and action forms are posted with fetch, their answer shown in place. Without JavaScript the pages still work.
(function () {
  "use strict";
  const pollMs = parseInt(document.body.dataset.pollMs || "0", 10);

  async function refresh() {
    try {
      const response = await fetch(window.location.href, {headers: {"X-Console-Live": "1"}, cache: "no-store",
                                                           credentials: "same-origin"});
      if (!response.ok) { return; }
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (el) {
        const fresh = doc.getElementById(el.id);
        if (fresh && fresh.innerHTML !== el.innerHTML) { el.innerHTML = fresh.innerHTML; }
      });
      const state = document.getElementById("live-state");
      if (state) { state.textContent = "· live " + new Date().toISOString().substring(11, 19) + " UTC"; }
    } catch (e) {
      const state = document.getElementById("live-state");
      if (state) { state.textContent = "· live updates paused (server unreachable)"; }
    }
  }

  document.querySelectorAll("form[data-action]").forEach(function (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const message = document.getElementById("action-message");
      const response = await fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form)),
                                                 headers: {"X-Console-Live": "1"}, credentials: "same-origin"});
      let text = "HTTP " + response.status;
      try { text = (await response.json()).message || text; } catch (e) { /* not JSON: keep the status */ }
      if (message) {
        message.textContent = text;
        message.className = "card " + (response.ok ? "" : "bad");
      }
      await refresh();
    });
  });

  if (pollMs > 0) { window.setInterval(refresh, pollMs); }
  window.alphaloomRefresh = refresh;
})();
