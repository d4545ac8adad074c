// The dashboard's only script: no build step, nothing loaded from elsewhere. It refreshes the
// page's live part from /live/<path> every few seconds, runs the actions (POSTs with the page's
// CSRF token, confirmed for removals), the criteria preview and the login form.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(body),
    });
  }

  async function problem(response) {
    try {
      const body = await response.json();
      return body.error + (body.detail && typeof body.detail === "string" ? ": " + body.detail : "");
    } catch (e) {
      return "HTTP " + response.status;
    }
  }

  function flash(text, bad) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;  // text, never HTML
    box.className = "flash" + (bad ? " flash-bad" : "");
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  let refreshing = false;
  async function refresh() {
    const live = document.getElementById("live");
    const status = document.getElementById("live-status");
    if (!live || !live.dataset.live || refreshing || document.hidden) return;
    refreshing = true;
    try {
      const response = await fetch(live.dataset.live, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); return; }
      if (!response.ok) throw new Error(await problem(response));
      const html = await response.text();  // rendered and escaped by the dashboard
      if (live.dataset.html !== html) { live.innerHTML = html; live.dataset.html = html; }
      if (status) { status.textContent = "live · " + new Date().toLocaleTimeString(); status.classList.remove("stale"); }
    } catch (e) {
      if (status) { status.textContent = "not updating: " + e.message; status.classList.add("stale"); }
    } finally {
      refreshing = false;
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      button.disabled = true;
      try {
        const response = await post(button.dataset.action, {state: button.dataset.state});
        if (!response.ok) { flash(await problem(response), true); return; }
        const answer = await response.json();
        flash((answer.id || "") + " is now " + answer.state);
        if (answer.state === "removed" && !/s$/.test(location.pathname)) { location.href = "/" + button.dataset.action.split("/")[2] + "s"; return; }
        await refresh();
      } catch (e) {
        flash(e.message, true);
      } finally {
        button.disabled = false;
      }
      return;
    }
    if (event.target.closest("[data-logout]")) {
      await post("/logout", {});
      location.href = "/login";
    }
  });

  async function preview(form) {
    const target = document.getElementById("lookup");
    const response = await post(form.dataset.lookup, {criteria: form.elements.criteria.value});
    if (response.status === 401) { location.href = "/login"; return; }
    target.innerHTML = response.ok ? await response.text() : "";
    if (!response.ok) flash(await problem(response), true);
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.id === "criteria-form") {
      event.preventDefault();
      await preview(form);
    } else if (form.id === "login-form") {
      event.preventDefault();
      const response = await post("/login", {token: form.elements.token.value, next: form.dataset.next});
      if (response.ok) { location.href = (await response.json()).next; return; }
      const error = document.getElementById("login-error");
      error.textContent = await problem(response);
      error.hidden = false;
    }
  });

  let typing;
  document.addEventListener("input", (event) => {
    if (event.target.id !== "criteria") return;
    clearTimeout(typing);
    typing = setTimeout(() => preview(event.target.form), 400);
  });

  if (document.getElementById("live")) setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", refresh);
})();
