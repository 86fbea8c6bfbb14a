// The pages' only script: readable local times, sending and deleting messages through the JSON API,
// and live updates from /api/events (reconnecting by itself, through the nameserver when this input
// node is gone). Everything user-written is inserted as text, never as HTML.
"use strict";

(function () {
  const body = document.body;
  const nameserver = body.dataset.nameserver || "";
  const chat = document.getElementById("chat");
  const home = document.getElementById("home");
  const banner = document.getElementById("connection");

  // ---- times ------------------------------------------------------------------------------------
  const sameDay = (a, b) => a.toDateString() === b.toDateString();
  function formatTime(date) {
    const now = new Date();
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (sameDay(date, now)) return time;
    const yesterday = new Date(now);
    yesterday.setDate(now.getDate() - 1);
    if (sameDay(date, yesterday)) return "Yesterday " + time;
    const options = { month: "short", day: "numeric" };
    if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString([], options) + " " + time;
  }
  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach((element) => {
      const date = new Date(element.getAttribute("datetime"));
      if (!isNaN(date)) {
        element.textContent = formatTime(date);
        element.title = date.toLocaleString();
      }
    });
  }
  localise(document);

  // ---- confirmations on dangerous forms ------------------------------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  async function errorText(response) {
    try {
      const data = await response.json();
      if (data && data.error) return data.error;
    } catch (_) { /* not JSON */ }
    return "Something went wrong (" + response.status + ")";
  }

  // ---- a chat page: history, sending, deleting ------------------------------------------------------
  let lastEpoch = 0;
  if (chat) lastEpoch = Number(chat.dataset.after) || 0;
  if (home) lastEpoch = Number(home.dataset.after) || 0;

  const list = document.getElementById("messages");
  const empty = document.getElementById("messages-empty");
  const me = chat ? chat.dataset.me : home ? home.dataset.me : "";

  function nearBottom() {
    return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  }
  function scrollDown() {
    if (list) list.scrollTop = list.scrollHeight;
  }
  scrollDown();

  function messageElement(message) {
    const mine = message.sender.id === me;
    const item = document.createElement("li");
    item.className = "message fresh" + (mine ? " mine" : "");
    item.id = "m-" + message.id;
    item.dataset.id = message.id;
    item.dataset.epoch = String(message.epoch);
    const meta = document.createElement("div");
    meta.className = "meta";
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = message.sender.username;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = "#" + message.sender.tag;
    sender.appendChild(tag);
    const time = document.createElement("time");
    time.setAttribute("datetime", message.created_at);
    time.textContent = formatTime(new Date(message.created_at));
    meta.append(sender, " ", time);
    if (mine) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "delete link";
      remove.dataset.delete = message.id;
      remove.title = "Delete this message";
      remove.textContent = "Delete";
      meta.append(" ", remove);
    }
    const content = document.createElement("p");
    content.className = "content";
    content.textContent = message.content;
    item.append(meta, content);
    return item;
  }

  // Inserts a message in epoch order unless it is already shown.
  function show(message) {
    if (!list || document.getElementById("m-" + message.id)) return;
    const stick = nearBottom() || message.sender.id === me;
    const element = messageElement(message);
    let before = null;
    for (const existing of list.children) {
      if (Number(existing.dataset.epoch) > message.epoch) { before = existing; break; }
    }
    list.insertBefore(element, before);
    if (empty) empty.hidden = true;
    if (stick) scrollDown();
  }
  function unshow(id) {
    const element = document.getElementById("m-" + id);
    if (element) element.remove();
    if (list && empty) empty.hidden = list.children.length > 0;
  }

  const composer = document.getElementById("composer");
  const composerError = document.getElementById("composer-error");
  function composerSays(text) {
    if (!composerError) return;
    composerError.textContent = text || "";
    composerError.hidden = !text;
  }
  const newClientId = () =>
    (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + "-" + Math.random().toString(16).slice(2);

  async function post(url, payload, attempts) {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Accept": "application/json" },
          credentials: "same-origin",
          body: JSON.stringify(payload),
        });
        if (response.status === 503 && attempt < attempts) {
          await new Promise((done) => setTimeout(done, 1000 * attempt));
          continue;
        }
        return response;
      } catch (error) {
        // The same client_id makes a retry safe: the server answers with the first message.
        if (attempt >= attempts) throw error;
        await new Promise((done) => setTimeout(done, 1000 * attempt));
      }
    }
  }

  if (composer && chat) {
    const textarea = composer.querySelector("textarea");
    const button = composer.querySelector("button[type=submit]");
    const counter = document.getElementById("counter");
    const max = Number(textarea.dataset.max) || 4000;
    // Characters as the server counts them (code points, not UTF-16 units). A paste longer than
    // the limit stays whole and says by how much it is over, instead of being cut without a word.
    const length = () => Array.from(textarea.value).length;
    const over = () => length() > max;
    function count() {
      const used = length();
      if (counter) {
        counter.hidden = used < max * 0.9;
        counter.textContent = used > max
          ? used + " / " + max + " characters: " + (used - max) + " too many"
          : used + " / " + max + " characters";
        counter.classList.toggle("over", used > max);
      }
      button.disabled = used > max;
    }
    textarea.addEventListener("input", count);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const content = textarea.value;
      if (!content.trim()) { composerSays("Write something first."); return; }
      if (over()) { count(); return; }
      button.disabled = true;
      composerSays("");
      try {
        const response = await post(chat.dataset.post, { content, client_id: newClientId() }, 3);
        if (response.status === 401) { location.assign("/"); return; }
        if (!response.ok) { composerSays(await errorText(response)); return; }
        const message = await response.json();
        show(message);
        textarea.value = "";
      } catch (_) {
        composerSays("Could not reach the server. Your message is still here; try again.");
      } finally {
        button.disabled = false;
        count();
        textarea.focus();
      }
    });
  }

  if (list) {
    list.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-delete]");
      if (!button) return;
      if (!window.confirm("Delete this message?")) return;
      button.disabled = true;
      try {
        const response = await fetch("/api/messages/" + encodeURIComponent(button.dataset.delete), {
          method: "DELETE",
          credentials: "same-origin",
        });
        if (response.ok || response.status === 404) unshow(button.dataset.delete);
        else composerSays(await errorText(response));
      } catch (_) {
        composerSays("Could not reach the server to delete that message.");
      } finally {
        button.disabled = false;
      }
    });
  }

  // Reloads the open chat's newest messages and merges them (after a reconnect: a gap cannot hide).
  async function refreshHistory() {
    if (!chat) return;
    try {
      const response = await fetch(chat.dataset.post, { credentials: "same-origin" });
      if (!response.ok) return;
      const messages = await response.json();
      const present = new Set(messages.map((message) => message.id));
      list.querySelectorAll("li.message").forEach((element) => {
        const oldest = messages.length ? messages[0].epoch : Infinity;
        if (Number(element.dataset.epoch) >= oldest && !present.has(element.dataset.id)) element.remove();
      });
      messages.forEach(show);
    } catch (_) { /* the next reconnect tries again */ }
  }

  // ---- the home page's group list -----------------------------------------------------------------
  const groups = document.getElementById("groups");
  const groupsEmpty = document.getElementById("groups-empty");
  function addGroup(group) {
    if (!groups || groups.querySelector('[data-group="' + CSS.escape(group.id) + '"]')) return;
    const item = document.createElement("li");
    item.dataset.group = group.id;
    const link = document.createElement("a");
    link.href = "/groups/" + encodeURIComponent(group.id);
    link.textContent = group.name || "New group";
    item.appendChild(link);
    groups.appendChild(item);
    if (groupsEmpty) groupsEmpty.hidden = true;
  }
  function removeGroup(id) {
    if (!groups) return;
    const item = groups.querySelector('[data-group="' + CSS.escape(id) + '"]');
    if (item) item.remove();
    if (groupsEmpty) groupsEmpty.hidden = groups.children.length > 0;
  }

  // ---- live events --------------------------------------------------------------------------------
  if (!chat && !home) return;
  const members = document.getElementById("members");
  let source = null;
  let failures = 0;
  let retryTimer = null;
  let bannerTimer = null;

  function onMembership(change) {
    if (home) {
      if (change.user.id === me && (change.change === "created" || change.change === "joined")) addGroup(change.group);
      if ((change.user.id === me && change.change === "left") || change.change === "deleted") removeGroup(change.group.id);
    }
    if (chat && chat.dataset.kind === "group" && change.group.id === chat.dataset.chat) {
      const gone = (change.change === "left" && change.user.id === me) || change.change === "deleted";
      if (gone) {
        document.getElementById("gone").hidden = false;
        if (composer) composer.querySelectorAll("textarea, button").forEach((element) => { element.disabled = true; });
      } else if (members && change.change === "joined" && !members.querySelector('[data-member="' + CSS.escape(change.user.id) + '"]')) {
        const item = document.createElement("li");
        item.dataset.member = change.user.id;
        item.append(change.user.username);
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "#" + change.user.tag;
        item.appendChild(tag);
        members.appendChild(item);
      } else if (members && change.change === "left") {
        const item = members.querySelector('[data-member="' + CSS.escape(change.user.id) + '"]');
        if (item) item.remove();
      }
    }
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/events?after=" + encodeURIComponent(String(lastEpoch)));
    const track = (event) => {
      if (event.lastEventId) lastEpoch = Math.max(lastEpoch, Number(event.lastEventId) || 0);
    };
    source.addEventListener("ready", () => {
      const recovered = failures > 0;
      failures = 0;
      clearTimeout(bannerTimer);
      if (banner) banner.hidden = true;
      if (recovered) refreshHistory();
    });
    source.addEventListener("message", (event) => {
      track(event);
      const message = JSON.parse(event.data);
      if (chat && message.chat === chat.dataset.chat) show(message);
    });
    source.addEventListener("message_deleted", (event) => {
      track(event);
      const deleted = JSON.parse(event.data);
      if (chat && deleted.chat === chat.dataset.chat) unshow(deleted.id);
    });
    source.addEventListener("membership", (event) => {
      track(event);
      onMembership(JSON.parse(event.data));
    });
    source.onerror = () => {
      failures += 1;
      // A blip that heals within a moment is not worth a banner.
      clearTimeout(bannerTimer);
      bannerTimer = setTimeout(() => { if (banner && failures > 0) banner.hidden = false; }, 1500);
      // EventSource retries network errors itself; an HTTP error (503 while the node pauses) closes it.
      if (source.readyState === EventSource.CLOSED || failures > 1) {
        source.close();
        clearTimeout(retryTimer);
        retryTimer = setTimeout(recover, Math.min(1000 * failures, 5000));
      }
    };
  }

  async function recover() {
    try {
      const response = await fetch("/api/me", { credentials: "same-origin" });
      if (response.status === 401) { location.assign("/"); return; }
      if (response.ok) { connect(); return; }
    } catch (_) { /* this node does not answer */ }
    if (nameserver && failures >= 4) {
      // This input node is gone: the nameserver sends the browser to a live one.
      location.assign(nameserver);
      return;
    }
    connect();
  }

  // A page kept in the back/forward cache must not keep its live connection: Chromium allows six
  // per host, and after six page changes the next page would wait about a minute for a free one.
  // Leaving closes it; coming back from the cache reopens it where it left off (`lastEpoch`).
  window.addEventListener("pagehide", () => {
    clearTimeout(retryTimer);
    clearTimeout(bannerTimer);
    if (source) source.close();
    source = null;
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      failures = 0;
      connect();
    }
  });

  connect();
})();
