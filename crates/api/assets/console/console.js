// The jwt-auth operator console: plain DOM, no framework, no inline script (the page's
// Content-Security-Policy forbids it). The access token lives in this closure only, never in
// web storage; the refresh token is the HttpOnly cookie of cookie mode, sent to /auth alone,
// and every refresh carries X-Requested-With (the server's CSRF guard). Both tokens are bound
// with DPoP (RFC 9449) to an ECDSA P-256 key that WebCrypto made non-extractable: the page can
// sign with it but nobody can read it, so a copied token is good for nothing without this
// page. The key is kept in IndexedDB, which stores the key object itself, still
// non-extractable, so that a reload can refresh. Every request to the server carries a fresh
// proof. A browser without WebCrypto or IndexedDB (a page not served over HTTPS or from
// localhost) gets bearer tokens, and the sign-in form says so. Every value shown is set as
// text, never parsed as HTML.
"use strict";

(() => {
  const PAGE = 20;
  let accessToken = null;
  let me = null;
  let offset = 0;
  let emailFilter = "";

  const $ = (id) => document.getElementById(id);

  // ---- DPoP -------------------------------------------------------------------------------

  const KEY_DB = "jwt-auth-console";
  const KEY_STORE = "dpop";
  const KEY_NAME = "key";
  const canBind = Boolean(window.isSecureContext && window.crypto && crypto.subtle && window.indexedDB);
  // The key the access token is bound to: { privateKey, publicKey, jwk }; null when unbound.
  let key = null;
  // How the access token is presented: "DPoP" when it is bound, else "Bearer".
  let scheme = "Bearer";
  // The server's last DPoP-Nonce, put in every proof once given.
  let nonce = null;
  // The server's clock minus this one (ms), from its Date header: a proof's iat is the server's time.
  let skew = 0;

  const utf8 = (text) => new TextEncoder().encode(text);

  function base64url(bytes) {
    let binary = "";
    for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Runs `use` on the key store in a transaction; resolves to the request's result.
  function keyStore(mode, use) {
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open(KEY_DB, 1);
      opening.onupgradeneeded = () => opening.result.createObjectStore(KEY_STORE);
      opening.onerror = () => reject(opening.error);
      opening.onsuccess = () => {
        const db = opening.result;
        try {
          const transaction = db.transaction(KEY_STORE, mode);
          const request = use(transaction.objectStore(KEY_STORE));
          transaction.oncomplete = () => { db.close(); resolve(request.result); };
          transaction.onerror = transaction.onabort = () => { db.close(); reject(transaction.error); };
        } catch (error) {
          db.close();
          reject(error);
        }
      };
    });
  }

  // The key pair with the public JWK of its proofs' header (RFC 7638's members only).
  async function withJwk(pair) {
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, jwk: { kty, crv, x, y } };
  }

  function bearerOnly() {
    $("bearer-note").hidden = false;
  }

  // A new non-extractable key; null when this browser cannot make one.
  async function newKey() {
    if (!canBind) return null;
    try {
      const pair = await crypto.subtle.generateKey(
        { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
      return await withJwk(pair);
    } catch {
      bearerOnly();
      return null;
    }
  }

  // Stores the key a session was just bound to, in place of the last one. If it cannot be
  // stored, it is kept in memory alone, and a reload signs out.
  async function keepKey(bound) {
    await keyStore("readwrite", (store) =>
      store.put({ privateKey: bound.privateKey, publicKey: bound.publicKey }, KEY_NAME)).catch(() => {});
  }

  // The stored key, or null.
  async function storedKey() {
    if (!canBind) return null;
    try {
      const pair = await keyStore("readonly", (store) => store.get(KEY_NAME));
      return pair && pair.privateKey ? await withJwk(pair) : null;
    } catch {
      return null;
    }
  }

  async function forgetKey() {
    key = null;
    if (canBind) await keyStore("readwrite", (store) => store.delete(KEY_NAME)).catch(() => {});
  }

  // A DPoP proof (RFC 9449 §4.2) of `proofKey` for `method` `path`, presenting `token` if any.
  async function proof(proofKey, method, path, token) {
    const htu = new URL(path, location.href);
    htu.search = "";
    htu.hash = "";
    const claims = {
      jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: method,
      htu: htu.href,
      iat: Math.floor((Date.now() + skew) / 1000),
    };
    if (token) claims.ath = base64url(await crypto.subtle.digest("SHA-256", utf8(token)));
    if (nonce) claims.nonce = nonce;
    const header = { typ: "dpop+jwt", alg: "ES256", jwk: proofKey.jwk };
    const input = `${base64url(utf8(JSON.stringify(header)))}.${base64url(utf8(JSON.stringify(claims)))}`;
    // WebCrypto's ECDSA signature is r || s, 32 bytes each: JWS ES256's form (RFC 7518 §3.4).
    const signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" }, proofKey.privateKey, utf8(input));
    return `${input}.${base64url(signature)}`;
  }

  // Whether the server refused a proof for want of its nonce (RFC 9449 §8 and §9).
  async function wantsNonce(answer) {
    if (!answer.headers.get("DPoP-Nonce")) return false;
    if (answer.status === 401) {
      return /error="use_dpop_nonce"/.test(answer.headers.get("WWW-Authenticate") || "");
    }
    if (answer.status !== 400) return false;
    const body = await answer.clone().json().catch(() => null);
    return Boolean(body && body.error === "use_dpop_nonce");
  }

  // ---- HTTP -------------------------------------------------------------------------------

  // fetch, with a fresh proof of `proofKey` if any and, with `token`, the access token in its
  // scheme; sent once more, with the server's nonce, when the server asks for one.
  async function send(path, options, { token = null, proofKey = null } = {}) {
    const method = (options.method || "GET").toUpperCase();
    for (let tries = 1; ; tries += 1) {
      const headers = { ...(options.headers || {}) };
      if (token) headers.Authorization = `${scheme} ${token}`;
      if (proofKey) headers.DPoP = await proof(proofKey, method, path, token);
      const answer = await fetch(path, { ...options, headers });
      const served = Date.parse(answer.headers.get("Date") || "");
      if (!Number.isNaN(served)) skew = served - Date.now();
      const given = answer.headers.get("DPoP-Nonce");
      if (given) nonce = given;
      if (proofKey && tries === 1 && await wantsNonce(answer)) continue;
      return answer;
    }
  }

  // Keeps the tokens of a token answer obtained with a proof of `proofKey` (or none), and the
  // key they are bound to: stored only now, so that the stored key is always the one the
  // refresh cookie is bound to (a failed sign-in leaves both as they were).
  async function take(body, proofKey, stored = false) {
    accessToken = body.access_token;
    scheme = String(body.token_type).toLowerCase() === "dpop" ? "DPoP" : "Bearer";
    key = scheme === "DPoP" ? proofKey : null;
    if (key && !stored) await keepKey(key);
  }

  async function refresh() {
    // The refresh cookie is bound to the stored key: another tab may have signed in again,
    // with a key of its own, since this one did. A cookie of a session without a key gets
    // bound to a new one.
    const stored = await storedKey();
    const proofKey = stored || key || (await newKey());
    const answer = await send("/auth/refresh?cookie=true", {
      method: "POST",
      headers: { "X-Requested-With": "console" },
    }, { proofKey });
    if (!answer.ok) return false;
    await take(await answer.json(), proofKey, proofKey === stored);
    return true;
  }

  // Ends the session: with the access token and a proof of its key while the token is good,
  // else with the refresh cookie. Then the key is forgotten; the next sign-in makes another.
  async function logout() {
    const options = { method: "POST", headers: { "X-Requested-With": "console" } };
    let answer = null;
    if (accessToken) {
      answer = await send("/auth/logout", options,
        { token: accessToken, proofKey: scheme === "DPoP" ? key : null });
    }
    if (!answer || answer.status === 401) await send("/auth/logout", options, { proofKey: key });
    accessToken = null;
    scheme = "Bearer";
    await forgetKey();
  }

  // Calls the API with the access token; on 401, refreshes once and tries again.
  async function api(path, options = {}) {
    const call = () => send(path, options,
      { token: accessToken, proofKey: scheme === "DPoP" ? key : null });
    let answer = await call();
    if (answer.status === 401 && await refresh()) answer = await call();
    if (answer.status === 401) {
      signedOut("Your session has ended; sign in again.");
      throw new Error("signed out");
    }
    return answer;
  }

  async function json(path, options) {
    const answer = await api(path, options);
    const body = answer.status === 204 ? null : await answer.json();
    if (!answer.ok) throw new Error(body && body.message ? body.message : `HTTP ${answer.status}`);
    return body;
  }

  // ---- Page plumbing ----------------------------------------------------------------------

  function notice(text, isError = false) {
    const box = $("notice");
    box.textContent = text;
    box.classList.toggle("error", isError);
    box.hidden = !text;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  // An event handler whose failure is shown, not lost.
  function guarded(action) {
    return (...args) => action(...args).catch((error) => {
      if (error.message !== "signed out") notice(error.message, true);
    });
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function age(iso) {
    const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (seconds < 120) return `${Math.round(seconds)} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
    return `${Math.round(seconds / 86400)} days`;
  }

  // A modal confirmation naming what the action does; resolves to true on Confirm.
  function confirmAction(text) {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
    });
  }

  function show(id) {
    for (const section of document.querySelectorAll("section")) section.hidden = section.id !== id;
    for (const link of document.querySelectorAll("nav a")) {
      link.classList.toggle("current", id.startsWith(link.dataset.view));
    }
  }

  function signedOut(message) {
    accessToken = null;
    me = null;
    hideSecret();
    $("nav").hidden = true;
    show("signin");
    if (message) notice(message, true);
  }

  async function signedIn() {
    me = await json("/api/me");
    if (!me.roles.includes("admin")) {
      // Not an administrator: end the session this sign-in made, and say so.
      await logout();
      show("signin");
      const error = $("signin-error");
      error.textContent = `${me.email} is not an administrator: the console is for accounts with the admin role.`;
      error.hidden = false;
      me = null;
      return;
    }
    $("signin-error").hidden = true;
    $("whoami").textContent = me.email;
    $("nav").hidden = false;
    route();
  }

  // ---- Views ------------------------------------------------------------------------------

  async function users() {
    show("users");
    const query = new URLSearchParams({ limit: PAGE, offset });
    if (emailFilter) query.set("email", emailFilter);
    const page = await json(`/api/users?${query}`);
    const rows = $("user-rows");
    rows.replaceChildren();
    for (const user of page.users) {
      const row = document.createElement("tr");
      row.className = "link";
      row.dataset.id = user.id;
      cell(row, user.email);
      cell(row, user.roles.join(", "));
      cell(row, user.disabled ? "disabled" : "");
      cell(row, when(user.created_at));
      row.addEventListener("click", () => { location.hash = `#user/${user.id}`; });
      rows.appendChild(row);
    }
    const last = Math.min(offset + page.users.length, page.total);
    $("page-info").textContent = page.total ? `${offset + 1}–${last} of ${page.total}` : "no users";
    $("prev-page").disabled = offset === 0;
    $("next-page").disabled = last >= page.total;
  }

  async function user(id) {
    show("user");
    const found = await json(`/api/admin/users/${encodeURIComponent(id)}`);
    $("user-email").textContent = found.email;
    $("user-id").textContent = found.id;
    $("user-created").textContent = when(found.created_at);
    $("user-status").textContent = found.disabled ? "disabled" : "active";
    $("roles-input").value = found.roles.join(", ");
    const toggle = $("toggle-disabled");
    toggle.textContent = found.disabled ? "Enable account" : "Disable account";
    toggle.className = found.disabled ? "" : "danger";
    toggle.onclick = guarded(async () => {
      const disabling = !found.disabled;
      const text = disabling
        ? `Disable ${found.email}? Every session ends now and their logins fail until the account is enabled again.`
        : `Enable ${found.email}? They can log in again.`;
      if (!await confirmAction(text)) return;
      await json(`/api/admin/users/${encodeURIComponent(id)}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ disabled: disabling }),
      });
      notice(`${found.email} is ${disabling ? "disabled" : "enabled"}.`);
      await user(id);
    });
    $("roles-form").onsubmit = guarded(async (event) => {
      event.preventDefault();
      const roles = $("roles-input").value.split(",").map((r) => r.trim()).filter(Boolean);
      if (!await confirmAction(`Give ${found.email} the roles: ${roles.join(", ") || "(none)"}? New tokens carry them; tokens already issued keep the old ones until they expire.`)) return;
      await json(`/api/admin/users/${encodeURIComponent(id)}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ roles }),
      });
      notice(`${found.email} now has the roles: ${roles.join(", ") || "(none)"}.`);
      await user(id);
    });
    $("revoke-all").onclick = guarded(async () => {
      if (!await confirmAction(`Revoke every session of ${found.email}? All their tokens are refused within a second, everywhere; they can log in again.`)) return;
      await json(`/api/admin/users/${encodeURIComponent(id)}/revoke`, { method: "POST" });
      notice(`Every session of ${found.email} is revoked.`);
      await user(id);
    });
    const sessions = await json(`/api/admin/users/${encodeURIComponent(id)}/sessions`);
    const rows = $("session-rows");
    rows.replaceChildren();
    for (const session of sessions.sessions) {
      const row = document.createElement("tr");
      row.dataset.session = session.id;
      cell(row, when(session.created_at));
      cell(row, when(session.last_used_at));
      cell(row, when(session.expires_at));
      cell(row, session.ip);
      cell(row, session.user_agent);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "danger revoke-session";
      button.textContent = "Revoke";
      button.onclick = guarded(async () => {
        if (!await confirmAction(`Revoke this session of ${found.email} (${session.user_agent || "unknown client"}, ${session.ip || "unknown address"})? Its tokens are refused within a second.`)) return;
        await json(`/api/admin/users/${encodeURIComponent(id)}/sessions/${encodeURIComponent(session.id)}/revoke`, { method: "POST" });
        notice("The session is revoked.");
        await user(id);
      });
      cell(row, "").appendChild(button);
      rows.appendChild(row);
    }
    const revoked = $("revoked-rows");
    revoked.replaceChildren();
    for (const session of sessions.revoked) {
      const row = document.createElement("tr");
      row.dataset.session = session.id;
      cell(row, when(session.created_at));
      cell(row, when(session.revoked_at));
      cell(row, session.revoke_reason);
      cell(row, session.ip);
      cell(row, session.user_agent);
      revoked.appendChild(row);
    }
  }

  async function keys() {
    show("keys");
    const list = await json("/api/admin/keys");
    const where = {
      database: "Keys live in the database, sealed under KEY_ENCRYPTION_KEY: rotate and revoke here.",
      directory: "Keys live in DATA_DIR/keys/: rotate here; to revoke one, delete its file (or set KEY_ENCRYPTION_KEY).",
      pinned: "The signing key is pinned by JWT_SECRET or JWT_PRIVATE_KEY_FILE: rotate it by redeploying.",
    };
    $("key-source").textContent = where[list.source] || list.source;
    $("rotate").disabled = $("rotate-now").disabled = list.source === "pinned";
    const rows = $("key-rows");
    rows.replaceChildren();
    for (const key of list.keys) {
      const row = document.createElement("tr");
      row.dataset.kid = key.kid;
      cell(row, key.kid, "mono");
      cell(row, key.algorithm);
      cell(row, key.state, `state-${key.state}`);
      cell(row, age(key.created_at));
      const actions = cell(row, "");
      if (list.source === "database" && (key.state === "retired" || key.state === "pending")) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "danger revoke-key";
        button.textContent = "Revoke";
        button.onclick = guarded(async () => {
          if (!await confirmAction(`Revoke key ${key.kid}? Every token it signed is refused by every instance and every service within a second: users holding them (you too, if this session's tokens are among them) must log in again, and services must fetch new tokens.`)) return;
          await json(`/api/admin/keys/${encodeURIComponent(key.kid)}/revoke`, { method: "POST" });
          notice(`Key ${key.kid} is revoked.`);
          await keys();
        });
        actions.appendChild(button);
      }
      rows.appendChild(row);
    }
  }

  async function rotate(now) {
    const text = now
      ? "Rotate now? The new key signs at once; verifiers holding a cached JWK set refuse its tokens until they fetch it again. Use it for a compromised key, then revoke the old one."
      : "Rotate? The new key is published now and signs in 61 seconds, once every cached JWK set has it; tokens of the old key stay valid until they expire.";
    if (!await confirmAction(text)) return;
    const rotated = await json(`/api/admin/keys/rotate?now=${now}`, { method: "POST" });
    // Our own tokens move to the new key, so that revoking the old one does not sign us out.
    if (now) await refresh();
    notice(`New key ${rotated.kid}: signs from ${when(rotated.activates_at)}.`);
    await keys();
  }

  // The non-empty lines of a text box, trimmed.
  function lines(text) {
    return text.split("\n").map((line) => line.trim()).filter(Boolean);
  }

  function hideSecret() {
    $("client-secret").hidden = true;
    $("client-secret-value").textContent = "";
  }

  async function clients() {
    show("clients");
    const list = await json("/api/admin/clients");
    const rows = $("client-rows");
    rows.replaceChildren();
    for (const client of list.clients) {
      const row = document.createElement("tr");
      row.dataset.client = client.client_id;
      cell(row, client.name);
      cell(row, client.client_id, "mono");
      cell(row, client.public ? "public" : "confidential");
      cell(row, client.first_party ? "first-party" : client.redirect_uris.length ? "asks users" : "");
      const uris = cell(row, "", "mono uris");
      for (const uri of client.redirect_uris) {
        const line = document.createElement("div");
        line.textContent = uri;
        uris.appendChild(line);
      }
      for (const uri of client.post_logout_redirect_uris) {
        const line = document.createElement("div");
        line.className = "post-logout";
        line.textContent = `after sign-out: ${uri}`;
        uris.appendChild(line);
      }
      cell(row, client.roles.join(", "));
      cell(row, when(client.created));
      const button = document.createElement("button");
      button.type = "button";
      button.className = "danger remove-client";
      button.textContent = "Remove";
      button.onclick = guarded(async () => {
        if (!await confirmAction(`Remove the client ${client.name} (${client.client_id})? Its tokens, and those of the sessions users granted it, are refused everywhere within a second; it can no longer get tokens or sign anyone in.`)) return;
        await json(`/api/admin/clients/${encodeURIComponent(client.client_id)}`, { method: "DELETE" });
        notice(`The client ${client.name} is removed.`);
        await clients();
      });
      cell(row, "").appendChild(button);
      rows.appendChild(row);
    }
    $("client-none").hidden = list.clients.length > 0;
  }

  async function addClient(form) {
    const data = new FormData(form);
    const body = {
      name: data.get("name").trim(),
      roles: data.get("roles").split(",").map((r) => r.trim()).filter(Boolean),
      redirect_uris: lines(data.get("redirect_uris")),
      post_logout_redirect_uris: lines(data.get("post_logout_redirect_uris")),
      public: data.get("public") === "on",
      first_party: data.get("first_party") === "on",
    };
    const added = await json("/api/admin/clients", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    form.reset();
    if (added.client_secret) {
      // Shown this once: the server keeps only its digest.
      $("client-secret-text").textContent = `The secret of ${added.name} (client id ${added.client_id}), shown this once: store it now. Only its digest is kept; if it is lost, remove the client and add it again.`;
      $("client-secret-value").textContent = added.client_secret;
      $("client-secret").hidden = false;
      notice("");
    } else {
      hideSecret();
      notice(`The public client ${added.name} is added (client id ${added.client_id}); it has no secret.`);
    }
    await clients();
  }

  async function events() {
    show("events");
    const query = new URLSearchParams({ limit: 100 });
    const filterUser = $("event-user").value.trim();
    const filterKind = $("event-kind").value;
    if (filterUser) query.set("user", filterUser);
    if (filterKind) query.set("kind", filterKind);
    const list = await json(`/api/admin/events?${query}`);
    const rows = $("event-rows");
    rows.replaceChildren();
    for (const event of list.events) {
      const row = document.createElement("tr");
      row.dataset.kind = event.kind;
      cell(row, when(event.at));
      cell(row, event.kind);
      cell(row, event.user_id, "mono");
      cell(row, event.session_id, "mono");
      cell(row, event.ip);
      cell(row, event.user_agent);
      cell(row, event.detail);
      rows.appendChild(row);
    }
  }

  async function route() {
    if (!me) return;
    const [view, id] = location.hash.slice(1).split("/");
    try {
      if (view === "user" && id) await user(id);
      else if (view === "keys") await keys();
      else if (view === "clients") await clients();
      else if (view === "events") await events();
      else await users();
    } catch (error) {
      if (error.message !== "signed out") notice(error.message, true);
    }
  }

  // ---- Wiring -----------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", async () => {
    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      // Each sign-in binds its session to a new key.
      const proofKey = await newKey();
      const answer = await send("/auth/login?cookie=true", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
      }, { proofKey });
      const body = await answer.json();
      if (!answer.ok) {
        const error = $("signin-error");
        error.textContent = body.message || `Sign-in failed (${answer.status}).`;
        error.hidden = false;
        return;
      }
      await take(body, proofKey);
      event.target.reset();
      notice("");
      await signedIn();
    });
    $("signout").addEventListener("click", async () => {
      await logout();
      signedOut("");
      notice("Signed out.");
    });
    $("user-search").addEventListener("submit", (event) => {
      event.preventDefault();
      emailFilter = new FormData(event.target).get("email").trim();
      offset = 0;
      location.hash === "#users" ? route() : (location.hash = "#users");
    });
    $("prev-page").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); route(); });
    $("next-page").addEventListener("click", () => { offset += PAGE; route(); });
    $("rotate").addEventListener("click", () => rotate(false).catch((e) => notice(e.message, true)));
    $("rotate-now").addEventListener("click", () => rotate(true).catch((e) => notice(e.message, true)));
    $("event-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      events().catch((e) => notice(e.message, true));
    });
    $("client-form").addEventListener("submit", (event) => {
      event.preventDefault();
      addClient(event.target).catch((e) => { if (e.message !== "signed out") notice(e.message, true); });
    });
    $("client-secret-done").addEventListener("click", hideSecret);
    window.addEventListener("hashchange", () => { notice(""); hideSecret(); route(); });
    if (!canBind) bearerOnly();
    // A reload keeps the session: the refresh cookie gets a new access token.
    if (await refresh()) await signedIn();
    else signedOut("");
  });
})();
