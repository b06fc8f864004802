// SecOps console: the little that needs script (passkeys, confirmations). Served from
// the app itself; the pages carry no inline script and no inline handlers.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    throw new Error(data.error || "the request was refused (" + response.status + ")");
  }
  return data;
}

function showError(message) {
  const box = document.getElementById("passkey-error");
  if (box) { box.textContent = message; box.hidden = false; }
}

async function registerPasskey(button) {
  const options = await postJSON(button.dataset.options);
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
  const credential = await navigator.credentials.create({ publicKey });
  const nameField = document.getElementById("passkey-name");
  const result = await postJSON(button.dataset.verify, {
    credential: credential.toJSON(), name: nameField ? nameField.value : "passkey",
  });
  window.location.assign(result.next || "/console/account");
}

async function signInWithPasskey(button) {
  const options = await postJSON(button.dataset.options);
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  const credential = await navigator.credentials.get({ publicKey });
  const result = await postJSON(button.dataset.verify, { credential: credential.toJSON() });
  window.location.assign(result.next || "/console/");
}

function wire(id, action) {
  const button = document.getElementById(id);
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try { await action(button); } catch (e) { showError(e.message || String(e)); }
    button.disabled = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wire("passkey-register", registerPasskey);
  wire("passkey-login", signInWithPasskey);
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
