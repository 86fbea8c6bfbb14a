// The pages' only script. Server-rendered pages work without it; with it they get:
//   - the sidebar kept live (new conversations, previews, unread counts, the total in the title) and search;
//   - a conversation that pages back through its history, groups messages, separates days, and offers
//     reply, reactions, edit and delete on each message;
//   - read markers, moved while the conversation is open and visible;
//   - failover that keeps your place: when this input node dies the page moves to another one through
//     the nameserver, carrying the draft and any unsent message in the URL fragment (#resume=…).
// Everything user-written is inserted as text (textContent, text nodes), never as HTML.
"use strict";

(function () {
  const body = document.body;
  // The nameservers, the ones this node reached at its last lease renewal first. A browser that has
  // navigated to a dead address cannot come back to try another, so a page that leaves first asks
  // them in this order which one answers (`firstLiveNameserver`).
  const nameservers = (body.dataset.nameserver || "").split(/\s+/).filter(Boolean).map((url) => url.replace(/\/+$/, ""));
  const app = document.getElementById("app");
  // An ephemeral group's page has a pane of its own kind: none of a stored conversation's machinery
  // (history, read markers, edits, failover of unsent messages) applies to it.
  const pane = document.getElementById("chat");
  const ephemeralPane = pane && pane.dataset.kind === "ephemeral" ? pane : null;
  const chat = ephemeralPane ? null : pane;
  const banner = document.getElementById("connection");
  const me = app ? app.dataset.me : "";
  const path = location.pathname;
  const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
  const GROUP_WINDOW_MS = 5 * 60 * 1000;

  // ---- small helpers ---------------------------------------------------------------------------------
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  const later = (ms) => new Promise((done) => setTimeout(done, ms));
  const visible = () => document.visibilityState === "visible";
  const newClientId = () =>
    (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  function tagText(tag) {
    return String(tag).padStart(4, "0");
  }
  function userUrl(user) {
    return "/users/" + encodeURIComponent(user.username) + "/" + encodeURIComponent(tagText(user.tag)) + "/chat";
  }
  function excerpt(text, length) {
    const characters = Array.from(text || "");
    return characters.length > length ? characters.slice(0, length).join("") + "…" : characters.join("");
  }

  async function errorText(response) {
    try {
      const data = await response.json();
      if (data && data.error) return data.error;
    } catch (_) { /* not JSON */ }
    return "Something went wrong (" + response.status + ")";
  }

  // One request to this input node, bounded in time. A network error or a timeout rejects: that is
  // what "the node does not answer" looks like from here.
  async function call(method, url, payload, timeout) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout || 10000);
    const headers = { "Accept": "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await fetch(url, {
        method,
        headers,
        credentials: "same-origin",
        cache: "no-store",
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- per-origin storage (a reload keeps the draft and the unsent messages) --------------------------
  const store = {
    get(key) {
      try { return JSON.parse(sessionStorage.getItem(key)); } catch (_) { return null; }
    },
    set(key, value) {
      try { sessionStorage.setItem(key, JSON.stringify(value)); } catch (_) { /* full or disabled */ }
    },
    remove(key) {
      try { sessionStorage.removeItem(key); } catch (_) { /* disabled */ }
    },
  };
  const draftKey = (where) => "chat:draft:" + where;
  const unsentKey = (where) => "chat:unsent:" + where;
  const RESUME_PATH = "chat:resume-path";

  // ---- the connection banner (role=status) -----------------------------------------------------------
  let bannerTimer = null;
  function say(text, hideAfter) {
    if (!banner) return;
    clearTimeout(bannerTimer);
    banner.textContent = text;
    banner.hidden = false;
    if (hideAfter) bannerTimer = setTimeout(() => { banner.hidden = true; }, hideAfter);
  }
  function quiet() {
    clearTimeout(bannerTimer);
    if (banner) banner.hidden = true;
  }

  // ---- coming back from another node: #resume={draft, unsent, path} ------------------------------------
  // The fragment travelled through the nameserver's redirect (browsers keep it) and never reached a
  // server. It is read once, removed from the address bar, and merged into this origin's storage, from
  // where the conversation restores the draft and sends the unsent messages.
  function takeResume() {
    if (!location.hash.startsWith("#resume=")) return null;
    let data = null;
    try { data = JSON.parse(decodeURIComponent(location.hash.slice("#resume=".length))); } catch (_) { data = null; }
    history.replaceState(history.state, "", location.pathname + location.search);
    if (!data || typeof data !== "object") return null;
    const where = typeof data.path === "string" && data.path.startsWith("/") && !data.path.startsWith("//")
      ? data.path : path;
    if (typeof data.draft === "string" && data.draft && !store.get(draftKey(where))) store.set(draftKey(where), data.draft);
    const unsent = store.get(unsentKey(where)) || [];
    (Array.isArray(data.unsent) ? data.unsent : []).forEach((item) => {
      if (!item || typeof item.content !== "string" || typeof item.client_id !== "string") return;
      if (unsent.some((known) => known.client_id === item.client_id)) return;
      unsent.push({ content: item.content, client_id: item.client_id, reply_to: typeof item.reply_to === "string" ? item.reply_to : null });
    });
    if (unsent.length) store.set(unsentKey(where), unsent);
    return where;
  }
  const resumedTo = takeResume();
  if (resumedTo && resumedTo !== path) {
    // Signed out here (another host, another cookie): sign in first, then go back there.
    store.set(RESUME_PATH, resumedTo);
    if (app) { location.replace(resumedTo); return; }
  }
  if (app && !resumedTo) {
    const pending = store.get(RESUME_PATH);
    if (pending) {
      store.remove(RESUME_PATH);
      if (pending !== path) { location.replace(pending); return; }
    }
  }
  if (!app && store.get(RESUME_PATH) && document.querySelector("form[action='/login']")) {
    say("Sign in to continue where you were; your draft is kept.");
  }

  // ---- times -------------------------------------------------------------------------------------------
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
  function formatShort(date) {
    const now = new Date();
    if (sameDay(date, now)) return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const options = { month: "short", day: "numeric" };
    if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString([], options);
  }
  function dayLabel(date) {
    const now = new Date();
    if (sameDay(date, now)) return "Today";
    const yesterday = new Date(now);
    yesterday.setDate(now.getDate() - 1);
    if (sameDay(date, yesterday)) return "Yesterday";
    const options = { weekday: "long", month: "long", day: "numeric" };
    if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString([], options);
  }
  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach((node) => {
      const date = new Date(node.getAttribute("datetime"));
      if (isNaN(date)) return;
      node.textContent = node.closest(".chats, .results") ? formatShort(date) : formatTime(date);
      node.title = date.toLocaleString();
    });
    root.querySelectorAll(".edited[data-edited]").forEach((node) => {
      const date = new Date(node.dataset.edited);
      if (!isNaN(date)) node.title = "Edited " + date.toLocaleString();
    });
  }
  function timeElement(iso, short) {
    const node = element("time");
    node.setAttribute("datetime", iso);
    const date = new Date(iso);
    node.textContent = short ? formatShort(date) : formatTime(date);
    node.title = date.toLocaleString();
    return node;
  }
  localise(document);

  // ---- confirmations on dangerous forms ----------------------------------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  if (!app) return;

  // ---- the sidebar -------------------------------------------------------------------------------------
  const chats = document.getElementById("chats");
  const chatsEmpty = document.getElementById("chats-empty");
  const openChat = chat ? chat.dataset.chat : "";
  const baseTitle = document.title.replace(/^\(\d+\) /, "");

  function sidebarItem(id) {
    return chats ? chats.querySelector('li[data-chat="' + CSS.escape(id) + '"]') : null;
  }
  function updateTitle() {
    let total = 0;
    if (chats) chats.querySelectorAll("li[data-chat]").forEach((item) => { total += Number(item.dataset.unread) || 0; });
    document.title = (total > 0 ? "(" + total + ") " : "") + baseTitle;
  }
  function setUnread(item, count) {
    if (!item) return;
    count = Math.max(0, count);
    item.dataset.unread = String(count);
    item.classList.toggle("has-unread", count > 0);
    const badge = item.querySelector(".unread");
    if (badge) {
      badge.textContent = String(count);
      badge.setAttribute("aria-label", count + " unread");
      badge.hidden = count === 0;
    }
    updateTitle();
  }
  function previewText(message) {
    return (message.sender.id === me ? "You: " : message.sender.username + ": ") + message.content;
  }
  function setPreview(item, message) {
    const preview = item.querySelector(".chat-preview");
    if (preview) preview.textContent = previewText(message);
    const line = item.querySelector(".chat-line");
    let time = item.querySelector("time");
    const fresh = timeElement(message.created_at, true);
    if (time) time.replaceWith(fresh);
    else if (line) line.appendChild(fresh);
  }
  // One sidebar entry from a `GET /api/chats` summary.
  function chatEntry(summary) {
    const item = element("li", "chat-item");
    item.dataset.chat = summary.chat;
    item.dataset.kind = summary.kind;
    item.dataset.epoch = String(summary.activity_epoch || 0);
    item.dataset.read = String(summary.read_epoch || 0);
    const link = element("a");
    const name = element("span", "chat-name");
    if (summary.kind === "direct" && summary.user) {
      link.href = userUrl(summary.user);
      name.append(summary.user.username, element("span", "tag", "#" + tagText(summary.user.tag)));
    } else {
      const group = summary.group || { id: summary.chat, name: "Group" };
      link.href = "/groups/" + encodeURIComponent(group.id);
      name.textContent = group.name;
    }
    if (summary.chat === openChat) link.setAttribute("aria-current", "page");
    const top = element("span", "chat-line");
    top.appendChild(name);
    if (summary.last_message) top.appendChild(timeElement(summary.last_message.created_at, true));
    const bottom = element("span", "chat-line");
    bottom.appendChild(element("span", "chat-preview", summary.last_message ? previewText(summary.last_message) : "No messages yet"));
    const badge = element("span", "unread");
    bottom.appendChild(badge);
    link.append(top, bottom);
    item.appendChild(link);
    setUnread(item, Number(summary.unread) || 0);
    return item;
  }
  let chatsTimer = null;
  // Reloads the whole list from the server (a conversation it does not know yet, a membership change).
  function refreshChats() {
    clearTimeout(chatsTimer);
    chatsTimer = setTimeout(async () => {
      try {
        const response = await call("GET", "/api/chats");
        if (!response.ok) return;
        const data = await response.json();
        if (!data || !Array.isArray(data.chats) || !chats) return;
        const items = data.chats.map(chatEntry);
        chats.replaceChildren(...items);
        if (chatsEmpty) chatsEmpty.hidden = items.length > 0;
        const open = sidebarItem(openChat);
        if (open && visible() && chat) scheduleRead();
        updateTitle();
      } catch (_) { /* the next event tries again */ }
    }, 250);
  }
  // A new message: the sidebar shows it as the preview, moves its chat up and counts it when unseen.
  function bump(message) {
    const item = sidebarItem(message.chat);
    if (!item) { refreshChats(); return; }
    // A stream resumes after the older of the page's reads, so a message the sidebar already counts
    // may come again: only one newer than the chat's last activity is new.
    const fresh = message.epoch > (Number(item.dataset.epoch) || 0);
    if (message.epoch >= (Number(item.dataset.epoch) || 0)) {
      item.dataset.epoch = String(message.epoch);
      setPreview(item, message);
      if (chats.firstElementChild !== item) chats.prepend(item);
    }
    const seen = message.chat === openChat && visible();
    if (fresh && message.sender.id !== me && !seen && message.epoch > (Number(item.dataset.read) || 0)) {
      setUnread(item, (Number(item.dataset.unread) || 0) + 1);
    }
  }
  function removeChat(id) {
    const item = sidebarItem(id);
    if (item) item.remove();
    if (chatsEmpty && chats) chatsEmpty.hidden = chats.children.length > 0;
    updateTitle();
  }

  // ---- search --------------------------------------------------------------------------------------------
  const searchForm = document.getElementById("search");
  const searchInput = document.getElementById("search-input");
  const searchResults = document.getElementById("search-results");
  const searchStatus = document.getElementById("search-status");
  const results = document.getElementById("results");
  const chatList = document.getElementById("chat-list");
  if (searchForm && searchInput && results) {
    searchForm.hidden = false;
    let searchTimer = null;
    let asked = 0;
    const closeSearch = () => {
      searchResults.hidden = true;
      chatList.hidden = false;
      results.replaceChildren();
    };
    // Where a result leads: its conversation (as the sidebar links it) at the message.
    function resultTarget(message) {
      const item = sidebarItem(message.chat);
      const link = item ? item.querySelector("a") : null;
      if (link) {
        const name = item.querySelector(".chat-name");
        return { url: link.getAttribute("href"), name: name ? name.textContent : "" };
      }
      if (message.chat.startsWith("dm:") && message.sender.id !== me) {
        return { url: userUrl(message.sender), name: message.sender.username + "#" + tagText(message.sender.tag) };
      }
      return null;
    }
    function resultItem(hit) {
      const message = hit.message;
      const target = resultTarget(message);
      const item = element("li");
      const link = element("a");
      link.href = (target ? target.url : "/") + "#m-" + encodeURIComponent(message.id);
      link.appendChild(element("span", "result-chat", target ? target.name : "Conversation"));
      const text = element("span", "result-text");
      text.append(element("span", "sender", message.sender.id === me ? "You" : message.sender.username), ": ");
      (Array.isArray(hit.highlighted) ? hit.highlighted : [{ text: message.content, mark: false }]).forEach((segment) => {
        if (segment.mark) text.appendChild(element("mark", null, segment.text));
        else text.appendChild(document.createTextNode(segment.text));
      });
      link.append(text, timeElement(message.created_at, true));
      item.appendChild(link);
      return item;
    }
    async function search(query) {
      const ticket = ++asked;
      if (!query.trim()) { closeSearch(); return; }
      searchResults.hidden = false;
      chatList.hidden = true;
      searchStatus.textContent = "Searching…";
      try {
        const response = await call("GET", "/api/search?q=" + encodeURIComponent(query) + "&limit=20");
        if (ticket !== asked) return;
        if (response.status === 400) { results.replaceChildren(); searchStatus.textContent = "Type a word to search for."; return; }
        if (!response.ok) { searchStatus.textContent = await errorText(response); return; }
        const data = await response.json();
        const hits = data && Array.isArray(data.results) ? data.results : [];
        results.replaceChildren(...hits.map(resultItem));
        searchStatus.textContent = hits.length === 0 ? "No messages match." : hits.length === 1 ? "1 message" : hits.length + " messages";
      } catch (_) {
        if (ticket === asked) searchStatus.textContent = "Could not search just now.";
      }
    }
    searchInput.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => search(searchInput.value), 250);
    });
    searchInput.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { searchInput.value = ""; asked++; closeSearch(); }
    });
    searchForm.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(searchTimer);
      search(searchInput.value);
    });
  }

  // ---- the open conversation -----------------------------------------------------------------------------
  const scroller = document.getElementById("scroller");
  const list = document.getElementById("messages");
  const empty = document.getElementById("messages-empty");
  const historyStart = document.getElementById("history-start");
  const historyMore = document.getElementById("history-more");
  const jump = document.getElementById("jump");
  const composer = document.getElementById("composer");
  const textarea = composer ? composer.querySelector("textarea") : null;
  const pageSize = chat ? Number(chat.dataset.page) || 50 : 50;
  let atStart = chat ? chat.dataset.start === "true" : true;
  let unseen = 0;

  const messageItems = () => list ? list.querySelectorAll("li.message") : [];
  const epochOf = (item) => item.dataset.epoch === "pending" ? Infinity : Number(item.dataset.epoch) || 0;
  function nearBottom() {
    return !scroller || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }
  function scrollDown() {
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }

  function quoteElement(reply) {
    const quote = element("a", "quote");
    quote.href = "#m-" + encodeURIComponent(reply.id);
    quote.dataset.quote = reply.id;
    quote.tabIndex = -1;
    quote.append(element("span", "sender", reply.sender ? reply.sender.username : ""), " ", element("span", "quote-text", reply.excerpt || ""));
    return quote;
  }
  function setReactions(item, reactions) {
    let holder = item.querySelector(".reactions");
    if (!holder) {
      holder = element("ul", "reactions");
      const content = item.querySelector(".content");
      content.after(holder);
    }
    holder.replaceChildren(...(reactions || []).filter((r) => r.count > 0).map((reaction) => {
      const entry = element("li");
      const chip = element("button", "chip");
      chip.type = "button";
      chip.tabIndex = -1;
      chip.dataset.emoji = reaction.emoji;
      chip.setAttribute("aria-pressed", reaction.me ? "true" : "false");
      chip.append(element("span", "emoji", reaction.emoji), " ", element("span", "count", String(reaction.count)));
      chip.title = (reaction.me ? "Remove your " : "React with ") + reaction.emoji;
      entry.appendChild(chip);
      return entry;
    }));
    holder.hidden = holder.children.length === 0;
  }
  function readReactions(item) {
    return Array.from(item.querySelectorAll(".chip")).map((chip) => ({
      emoji: chip.dataset.emoji,
      count: Number(chip.querySelector(".count").textContent) || 0,
      me: chip.getAttribute("aria-pressed") === "true",
    }));
  }
  function setEdited(item, editedAt) {
    if (!editedAt) return;
    let mark = item.querySelector(".edited");
    if (!mark) {
      mark = element("span", "edited", "(edited)");
      item.querySelector(".meta").appendChild(mark);
    }
    mark.dataset.edited = editedAt;
    const date = new Date(editedAt);
    if (!isNaN(date)) mark.title = "Edited " + date.toLocaleString();
  }

  // The actions of one message, out of the tab order (see README: keyboard).
  function addActions(item) {
    if (item.querySelector(".actions") || item.classList.contains("pending")) return;
    const mine = item.dataset.sender === me;
    const actions = element("div", "actions");
    actions.setAttribute("role", "group");
    actions.setAttribute("aria-label", "Message actions");
    const button = (action, label, title, className) => {
      const node = element("button", className, label);
      node.type = "button";
      node.tabIndex = -1;
      node.dataset.action = action;
      node.title = title;
      return node;
    };
    actions.appendChild(button("reply", "Reply", "Reply (R)"));
    const react = button("react", "React", "React (1–6 picks an emoji)");
    react.setAttribute("aria-expanded", "false");
    actions.appendChild(react);
    if (mine) {
      actions.appendChild(button("edit", "Edit", "Edit (E)"));
      actions.appendChild(button("delete", "Delete", "Delete (Delete key)", "delete"));
    }
    const palette = element("div", "palette");
    palette.hidden = true;
    PALETTE.forEach((emoji, index) => {
      const choice = element("button", null, emoji);
      choice.type = "button";
      choice.tabIndex = -1;
      choice.dataset.react = emoji;
      choice.title = "React with " + emoji + " (" + (index + 1) + ")";
      choice.setAttribute("aria-label", "React with " + emoji);
      palette.appendChild(choice);
    });
    actions.appendChild(palette);
    item.appendChild(actions);
  }

  function messageElement(message) {
    const mine = message.sender.id === me;
    const item = element("li", "message fresh" + (mine ? " mine" : ""));
    item.id = "m-" + message.id;
    item.dataset.id = message.id;
    item.dataset.epoch = String(message.epoch);
    item.dataset.sender = message.sender.id;
    item.tabIndex = -1;
    if (message.reply_to) item.appendChild(quoteElement(message.reply_to));
    const meta = element("div", "meta");
    const sender = element("span", "sender", message.sender.username);
    sender.appendChild(element("span", "tag", "#" + tagText(message.sender.tag)));
    meta.append(sender, " ", timeElement(message.created_at));
    item.append(meta, element("p", "content", message.content));
    setEdited(item, message.edited_at);
    setReactions(item, message.reactions || []);
    addActions(item);
    return item;
  }

  // Day separators and runs of one sender (within a few minutes: name and time shown once).
  function decorate() {
    if (!list) return;
    list.querySelectorAll("li.day").forEach((node) => node.remove());
    let previous = null;
    messageItems().forEach((item) => {
      const time = item.querySelector("time[datetime]");
      const date = time ? new Date(time.getAttribute("datetime")) : new Date();
      const previousDate = previous ? previous.date : null;
      if (!previousDate || !sameDay(previousDate, date)) {
        const day = element("li", "day", dayLabel(date));
        day.setAttribute("role", "separator");
        list.insertBefore(day, item);
      }
      const continued = previous && previous.sender === item.dataset.sender && previousDate && sameDay(previousDate, date) &&
        date - previousDate < GROUP_WINDOW_MS && !item.querySelector(".quote") && !item.classList.contains("pending");
      item.classList.toggle("continued", Boolean(continued));
      previous = { sender: item.dataset.sender, date };
    });
  }

  // Shows `message` in epoch order, or brings an existing copy up to date; answers the element.
  function show(message) {
    if (!list) return null;
    const existing = document.getElementById("m-" + message.id);
    if (existing) {
      const content = existing.querySelector(".content");
      if (content && content.textContent !== message.content && !existing.querySelector(".editor")) content.textContent = message.content;
      setEdited(existing, message.edited_at);
      if (Array.isArray(message.reactions)) setReactions(existing, message.reactions);
      return existing;
    }
    const stick = nearBottom() || message.sender.id === me;
    const item = messageElement(message);
    let after = null;
    const items = messageItems();
    for (let index = items.length - 1; index >= 0; index--) {
      if (epochOf(items[index]) < message.epoch) { after = items[index]; break; }
    }
    if (after) after.after(item);
    else list.prepend(item);
    if (empty) empty.hidden = true;
    decorate();
    if (stick) scrollDown();
    else if (message.sender.id !== me) {
      unseen += 1;
      showJump();
    }
    return item;
  }
  function unshow(id) {
    const item = document.getElementById("m-" + id);
    if (item) item.remove();
    if (list && empty) empty.hidden = messageItems().length > 0;
    decorate();
  }

  function showJump() {
    if (!jump) return;
    jump.textContent = unseen === 1 ? "1 new message ↓" : unseen + " new messages ↓";
    jump.hidden = unseen === 0;
  }
  if (jump) {
    jump.addEventListener("click", () => {
      unseen = 0;
      showJump();
      scrollDown();
      if (textarea) textarea.focus({ preventScroll: true });
    });
  }

  // Older messages, a page at a time, keeping what is on screen where it is.
  let loadingOlder = null;
  function loadOlder() {
    if (!chat || atStart) return Promise.resolve(false);
    if (loadingOlder) return loadingOlder;
    loadingOlder = (async () => {
      const oldest = Array.from(messageItems()).map(epochOf).filter((epoch) => epoch !== Infinity)[0];
      if (historyMore) historyMore.textContent = "Loading older messages…";
      try {
        const url = chat.dataset.post + "?limit=" + pageSize + (oldest ? "&before=" + oldest : "");
        const response = await call("GET", url);
        if (!response.ok) { if (historyMore) historyMore.textContent = "Could not load older messages; scroll up to try again."; return false; }
        const messages = await response.json();
        const height = scroller.scrollHeight;
        const top = scroller.scrollTop;
        const fragment = document.createDocumentFragment();
        messages.forEach((message) => {
          if (!document.getElementById("m-" + message.id)) {
            const item = messageElement(message);
            item.classList.remove("fresh");
            fragment.appendChild(item);
          }
        });
        list.prepend(fragment);
        if (messages.length < pageSize) {
          atStart = true;
          if (historyStart) historyStart.hidden = false;
          if (historyMore) historyMore.hidden = true;
        } else if (historyMore) {
          historyMore.textContent = "Scroll up for older messages";
        }
        if (empty) empty.hidden = messageItems().length > 0;
        decorate();
        scroller.scrollTop = top + (scroller.scrollHeight - height);
        return true;
      } catch (_) {
        if (historyMore) historyMore.textContent = "Could not load older messages; scroll up to try again.";
        suspectNode();
        return false;
      } finally {
        loadingOlder = null;
      }
    })();
    return loadingOlder;
  }

  // Scrolls to message `id`, loading older pages until it is there (or the start is reached).
  async function scrollToMessage(id) {
    for (let pages = 0; pages < 40; pages++) {
      const item = document.getElementById("m-" + id);
      if (item) {
        item.scrollIntoView({ block: "center" });
        item.classList.add("target");
        setTimeout(() => item.classList.remove("target"), 2500);
        item.focus({ preventScroll: true });
        return true;
      }
      if (atStart || !(await loadOlder())) return false;
    }
    return false;
  }

  if (scroller) {
    scroller.addEventListener("scroll", () => {
      if (scroller.scrollTop < 300) loadOlder();
      if (nearBottom() && unseen) { unseen = 0; showJump(); }
      if (nearBottom()) scheduleRead();
    }, { passive: true });
  }
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#m-")) scrollToMessage(decodeURIComponent(location.hash.slice(3)));
  });

  // ---- read markers ----------------------------------------------------------------------------------------
  let readSent = 0;
  let readTimer = null;
  {
    const item = chat ? sidebarItem(openChat) : null;
    readSent = item ? Number(item.dataset.read) || 0 : 0;
  }
  function newestShown() {
    let newest = 0;
    messageItems().forEach((item) => {
      const epoch = epochOf(item);
      if (epoch !== Infinity && epoch > newest) newest = epoch;
    });
    return newest;
  }
  function scheduleRead() {
    if (!chat || !visible()) return;
    clearTimeout(readTimer);
    readTimer = setTimeout(markRead, 400);
  }
  async function markRead() {
    if (!chat || !visible()) return;
    const item = sidebarItem(openChat);
    const epoch = newestShown();
    if (epoch <= readSent) {
      if (item && Number(item.dataset.unread) > 0 && epoch >= (Number(item.dataset.epoch) || 0)) setUnread(item, 0);
      return;
    }
    try {
      const response = await call("PUT", chat.dataset.read, { epoch });
      if (!response.ok) return;
      const answer = await response.json();
      readSent = Math.max(readSent, Number(answer.read_epoch) || epoch);
      if (item) {
        item.dataset.read = String(readSent);
        setUnread(item, 0);
      }
    } catch (_) {
      suspectNode();
    }
  }
  document.addEventListener("visibilitychange", () => {
    if (visible()) scheduleRead();
  });

  // ---- message actions ------------------------------------------------------------------------------------
  let replyTo = null;
  const replying = document.getElementById("replying");
  function startReply(item) {
    if (!replying || !textarea) return;
    const sender = item.querySelector(".meta .sender");
    const name = sender ? sender.firstChild.textContent : "";
    replyTo = { id: item.dataset.id, sender: name };
    document.getElementById("replying-sender").textContent = item.dataset.sender === me ? "yourself" : name;
    document.getElementById("replying-excerpt").textContent = excerpt(item.querySelector(".content").textContent, 100);
    replying.hidden = false;
    textarea.focus();
  }
  function cancelReply() {
    replyTo = null;
    if (replying) replying.hidden = true;
  }
  const cancelButton = document.getElementById("reply-cancel");
  if (cancelButton) cancelButton.addEventListener("click", () => { cancelReply(); textarea.focus(); });

  function startEdit(item) {
    if (item.dataset.sender !== me || item.querySelector(".editor")) return;
    const content = item.querySelector(".content");
    const editor = element("form", "editor");
    const label = element("label", "visually-hidden", "Edit message");
    const box = element("textarea");
    box.value = content.textContent;
    box.rows = Math.min(8, Math.max(2, box.value.split("\n").length));
    label.appendChild(box);
    const hint = element("p", "hint", "Enter saves, Escape cancels");
    const buttons = element("div", "buttons");
    const cancel = element("button", "secondary", "Cancel");
    cancel.type = "button";
    const save = element("button", null, "Save");
    save.type = "submit";
    buttons.append(cancel, save);
    editor.append(label, hint, buttons);
    content.hidden = true;
    content.after(editor);
    item.classList.add("acting");
    const close = () => {
      editor.remove();
      content.hidden = false;
      item.classList.remove("acting");
    };
    cancel.addEventListener("click", () => { close(); item.focus(); });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); close(); item.focus(); }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); editor.requestSubmit(); }
    });
    editor.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = box.value;
      if (!text.trim()) { hint.textContent = "A message cannot be empty; delete it instead."; return; }
      if (text === content.textContent) { close(); item.focus(); return; }
      save.disabled = true;
      try {
        const response = await call("PATCH", "/api/messages/" + encodeURIComponent(item.dataset.id), { content: text });
        if (!response.ok) { hint.textContent = await errorText(response); return; }
        const message = await response.json();
        content.textContent = message.content;
        setEdited(item, message.edited_at || new Date().toISOString());
        close();
        item.focus();
      } catch (_) {
        hint.textContent = "Could not reach the server; your edit is still here.";
        suspectNode();
      } finally {
        save.disabled = false;
      }
    });
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  async function toggleReaction(item, emoji) {
    const chip = Array.from(item.querySelectorAll(".chip")).find((node) => node.dataset.emoji === emoji);
    const on = !(chip && chip.getAttribute("aria-pressed") === "true");
    try {
      const response = await call(on ? "PUT" : "DELETE",
        "/api/messages/" + encodeURIComponent(item.dataset.id) + "/reactions/" + encodeURIComponent(emoji));
      if (!response.ok) { composerSays(await errorText(response)); return; }
      const message = await response.json();
      if (Array.isArray(message.reactions)) setReactions(item, message.reactions);
    } catch (_) {
      composerSays("Could not reach the server to react.");
      suspectNode();
    }
  }

  async function deleteMessage(item) {
    if (!window.confirm("Delete this message?")) return;
    try {
      const response = await call("DELETE", "/api/messages/" + encodeURIComponent(item.dataset.id));
      if (response.ok || response.status === 404) unshow(item.dataset.id);
      else composerSays(await errorText(response));
    } catch (_) {
      composerSays("Could not reach the server to delete that message.");
      suspectNode();
    }
  }

  function togglePalette(item, force) {
    const palette = item.querySelector(".palette");
    const button = item.querySelector('[data-action="react"]');
    if (!palette) return;
    const open = force === undefined ? palette.hidden : force;
    palette.hidden = !open;
    item.classList.toggle("acting", open);
    if (button) button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  if (list) {
    list.addEventListener("click", (event) => {
      const item = event.target.closest("li.message");
      if (!item) return;
      const quote = event.target.closest(".quote");
      if (quote) {
        event.preventDefault();
        scrollToMessage(quote.dataset.quote).then((found) => {
          if (!found) composerSays("The quoted message is no longer in this conversation.");
        });
        return;
      }
      const chip = event.target.closest(".chip");
      if (chip) { toggleReaction(item, chip.dataset.emoji); return; }
      const choice = event.target.closest("[data-react]");
      if (choice) { togglePalette(item, false); toggleReaction(item, choice.dataset.react); return; }
      const action = event.target.closest("[data-action]");
      if (!action) return;
      if (action.dataset.action === "reply") startReply(item);
      else if (action.dataset.action === "edit") startEdit(item);
      else if (action.dataset.action === "delete") deleteMessage(item);
      else if (action.dataset.action === "react") togglePalette(item);
    });
    // A focused message shows its actions; keep them on screen (below the text on a phone).
    list.addEventListener("focusin", (event) => {
      const item = event.target.closest("li.message");
      if (item && event.target === item) requestAnimationFrame(() => item.scrollIntoView({ block: "nearest" }));
    });
    list.addEventListener("focusout", (event) => {
      const item = event.target.closest("li.message");
      if (item && !item.contains(event.relatedTarget)) togglePalette(item, false);
    });
    // Keyboard: Tab reaches the list once; arrows move between messages; letters act on the focused one.
    list.addEventListener("keydown", (event) => {
      if (event.target.closest("textarea, input, .editor")) return;
      const items = Array.from(messageItems()).filter((item) => !item.classList.contains("pending"));
      if (!items.length) return;
      const item = event.target.closest("li.message");
      const index = item ? items.indexOf(item) : -1;
      const focus = (next) => { if (next) { next.focus(); next.scrollIntoView({ block: "nearest" }); } };
      if (event.key === "ArrowUp") { event.preventDefault(); focus(index < 0 ? items[items.length - 1] : items[Math.max(0, index - 1)]); if (index === 0) loadOlder(); return; }
      if (event.key === "ArrowDown") { event.preventDefault(); focus(index < 0 ? items[items.length - 1] : items[Math.min(items.length - 1, index + 1)]); return; }
      if (event.key === "Home") { event.preventDefault(); focus(items[0]); return; }
      if (event.key === "End") { event.preventDefault(); focus(items[items.length - 1]); return; }
      if (!item || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "Escape") { event.preventDefault(); togglePalette(item, false); if (textarea) textarea.focus(); return; }
      const key = event.key.toLowerCase();
      if (key === "r") { event.preventDefault(); startReply(item); }
      else if (key === "e" && item.dataset.sender === me) { event.preventDefault(); startEdit(item); }
      else if ((event.key === "Delete" || event.key === "Backspace") && item.dataset.sender === me) { event.preventDefault(); deleteMessage(item); }
      else if (/^[1-6]$/.test(event.key)) { event.preventDefault(); toggleReaction(item, PALETTE[Number(event.key) - 1]); }
    });
  }

  // ---- sending -----------------------------------------------------------------------------------------------
  const composerError = document.getElementById("composer-error");
  function composerSays(text) {
    if (!composerError) return;
    composerError.textContent = text || "";
    composerError.hidden = !text;
  }
  // Messages written here and not yet confirmed by a server: shown as pending, kept in this origin's
  // storage (a reload sends them again) and carried along when the page moves to another node.
  let unsent = store.get(unsentKey(path)) || [];
  const saveUnsent = () => {
    if (unsent.length) store.set(unsentKey(path), unsent.map(({ content, client_id, reply_to }) => ({ content, client_id, reply_to })));
    else store.remove(unsentKey(path));
  };
  function pendingElement(entry) {
    let item = list ? list.querySelector('li.pending[data-client="' + CSS.escape(entry.client_id) + '"]') : null;
    if (item || !list) return item;
    item = element("li", "message mine pending");
    item.dataset.client = entry.client_id;
    item.dataset.epoch = "pending";
    item.dataset.sender = me;
    const meta = element("div", "meta");
    meta.appendChild(element("span", "status", "Sending…"));
    item.append(meta, element("p", "content", entry.content));
    list.appendChild(item);
    if (empty) empty.hidden = true;
    scrollDown();
    return item;
  }
  function settle(entry, message) {
    unsent = unsent.filter((other) => other.client_id !== entry.client_id);
    saveUnsent();
    const item = pendingElement(entry);
    if (item) item.remove();
    if (message) {
      show(message);
      bump(message);
      scheduleRead();
    }
  }
  async function send(entry) {
    if (!chat || entry.sending) return;
    entry.sending = true;
    const item = pendingElement(entry);
    const status = item ? item.querySelector(".status") : null;
    if (status) status.textContent = "Sending…";
    if (item) item.classList.remove("failed");
    const payload = { content: entry.content, client_id: entry.client_id };
    if (entry.reply_to) payload.reply_to = entry.reply_to;
    try {
      for (let attempt = 1; ; attempt++) {
        const response = await call("POST", chat.dataset.post, payload);
        if (response.status === 503 && attempt < 3) { await later(700 * attempt); continue; }
        if (response.status === 401) { location.assign("/"); return; }
        if (!response.ok) {
          // Refused for good (too long, the quoted message is gone…): back in the box to fix.
          const why = await errorText(response);
          settle(entry, null);
          if (textarea && !textarea.value) { textarea.value = entry.content; textarea.dispatchEvent(new Event("input")); }
          composerSays(why);
          return;
        }
        settle(entry, await response.json());
        return;
      }
    } catch (_) {
      // Not sent, or sent with the answer lost: the same client_id makes the next try safe.
      if (item) item.classList.add("failed");
      if (status) status.textContent = "Not sent yet — it goes out when the connection is back";
      suspectNode();
    } finally {
      entry.sending = false;
    }
  }
  function sendUnsent() {
    unsent.forEach((entry) => send(entry));
  }

  if (composer && chat && textarea) {
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
    // The box grows with its text, up to the stylesheet's max-height (then it scrolls).
    function grow() {
      textarea.style.height = "auto";
      textarea.style.height = (textarea.scrollHeight + 2) + "px";
    }
    const saveDraft = () => {
      if (textarea.value) store.set(draftKey(path), textarea.value);
      else store.remove(draftKey(path));
    };
    const draft = store.get(draftKey(path));
    if (typeof draft === "string" && draft && !textarea.value) textarea.value = draft;
    textarea.addEventListener("input", () => { count(); grow(); saveDraft(); });
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      } else if (event.key === "Escape" && replyTo) {
        event.preventDefault();
        cancelReply();
      } else if (event.key === "ArrowUp" && !textarea.value) {
        const mine = Array.from(messageItems()).filter((item) => item.dataset.sender === me && !item.classList.contains("pending"));
        if (mine.length) { event.preventDefault(); startEdit(mine[mine.length - 1]); }
      }
    });
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = textarea.value;
      if (!content.trim()) { composerSays("Write something first."); return; }
      if (over()) { count(); return; }
      composerSays("");
      const entry = { content, client_id: newClientId(), reply_to: replyTo ? replyTo.id : null };
      unsent.push(entry);
      saveUnsent();
      textarea.value = "";
      saveDraft();
      cancelReply();
      count();
      grow();
      textarea.focus();
      send(entry);
    });
    count();
    grow();
  }

  // ---- live events and failover ---------------------------------------------------------------------------------
  let lastEpoch = Number(app.dataset.after) || 0;
  let source = null;
  let failures = 0;
  let unavailable = 0;
  let troubleSince = 0;
  let retryTimer = null;
  let resendTimer = null;
  let probing = false;
  let movingAway = false;

  function onMembership(change) {
    const mine = change.user && change.user.id === me;
    if (mine && (change.change === "created" || change.change === "joined")) refreshChats();
    if ((mine && change.change === "left") || change.change === "deleted") removeChat(change.group.id);
    else if (change.change === "joined" || change.change === "left") refreshChats();
    if (!chat || chat.dataset.kind !== "group" || change.group.id !== openChat) return;
    const members = document.getElementById("members");
    const gone = (change.change === "left" && mine) || change.change === "deleted";
    if (gone) {
      document.getElementById("gone").hidden = false;
      if (composer) composer.querySelectorAll("textarea, button").forEach((node) => { node.disabled = true; });
    } else if (members && change.change === "joined" && !members.querySelector('[data-member="' + CSS.escape(change.user.id) + '"]')) {
      const item = element("li");
      item.dataset.member = change.user.id;
      item.append(change.user.username, element("span", "tag", "#" + tagText(change.user.tag)));
      members.appendChild(item);
    } else if (members && change.change === "left") {
      const item = members.querySelector('[data-member="' + CSS.escape(change.user.id) + '"]');
      if (item) item.remove();
    }
  }

  // Reloads the open conversation's newest page and merges it (after a reconnect: a gap cannot hide).
  async function refreshHistory() {
    if (!chat || !list) return;
    try {
      const response = await call("GET", chat.dataset.post + "?limit=" + pageSize);
      if (!response.ok) return;
      const messages = await response.json();
      const present = new Set(messages.map((message) => message.id));
      const oldest = messages.length ? messages[0].epoch : Infinity;
      messageItems().forEach((item) => {
        if (epochOf(item) !== Infinity && epochOf(item) >= oldest && !present.has(item.dataset.id)) item.remove();
      });
      messages.forEach(show);
      scheduleRead();
    } catch (_) { /* the next reconnect tries again */ }
  }

  // ---- presence and typing ---------------------------------------------------------------------------
  // Members online wear a dot: `ready` says who is online when the stream opens, `presence` events
  // keep it current. "… is typing" shows for a while after each notice; this page announces its own
  // user at most every few seconds while the box holds text. Nothing of it is stored anywhere.
  const TYPING_SHOWN_MS = 6000;
  const TYPING_EVERY_MS = 3000;
  const typingLine = document.getElementById("typing");
  const typists = new Map();
  let typingTimer = null;
  let typingSent = 0;

  function setOnline(user, online) {
    document.querySelectorAll("#members li[data-member]").forEach((item) => {
      if (item.dataset.member !== user) return;
      item.classList.toggle("online", online);
      const text = item.querySelector(".presence-text");
      if (text) text.textContent = online ? "online" : "offline";
    });
  }

  function showOnline(users) {
    const online = new Set(users || []);
    document.querySelectorAll("#members li[data-member]").forEach((item) => {
      const user = item.dataset.member;
      setOnline(user, user === me || online.has(user));
    });
  }

  function showTyping() {
    if (!typingLine) return;
    const now = Date.now();
    for (const [user, entry] of typists) if (entry.until <= now) typists.delete(user);
    const names = Array.from(typists.values(), (entry) => entry.name);
    typingLine.textContent = names.length === 0 ? ""
      : names.length === 1 ? names[0] + " is typing…"
      : names.length === 2 ? names[0] + " and " + names[1] + " are typing…"
      : "Several people are typing…";
    clearTimeout(typingTimer);
    if (typists.size) typingTimer = setTimeout(showTyping, 1000);
  }

  function announceTyping() {
    const url = chat ? chat.dataset.typing : "";
    if (!url || !textarea || !textarea.value.trim()) return;
    const now = Date.now();
    if (now - typingSent < TYPING_EVERY_MS) return;
    typingSent = now;
    call("POST", url, undefined, 3000).catch(() => { /* a lost notice is repeated while typing */ });
  }
  if (textarea) textarea.addEventListener("input", announceTyping);

  // ---- an ephemeral group ---------------------------------------------------------------------------
  // Its messages exist only as events (the writer keeps the last ones for newcomers; nothing is
  // stored to page back through). They are placed by their number in the group's one order.
  const ephemeralList = ephemeralPane ? document.getElementById("messages") : null;

  function showEphemeral(message) {
    if (!ephemeralList || !message || document.getElementById("m-" + message.id)) return;
    const item = element("li", "message" + (message.sender && message.sender.id === me ? " mine" : ""));
    item.id = "m-" + message.id;
    item.dataset.id = message.id;
    item.dataset.seq = String(message.seq);
    const meta = element("div", "meta");
    const sender = element("span", "sender", message.sender ? message.sender.username : "");
    sender.appendChild(element("span", "tag", message.sender ? "#" + message.sender.tag : ""));
    const time = element("time", "", formatTime(new Date(message.created_at)));
    time.setAttribute("datetime", message.created_at);
    meta.append(sender, " ", time);
    item.append(meta, element("p", "content", message.content));
    const later = Array.from(ephemeralList.children).find((other) => Number(other.dataset.seq) > Number(message.seq));
    ephemeralList.insertBefore(item, later || null);
    const empty = document.getElementById("messages-empty");
    if (empty) empty.hidden = true;
    const scroller = document.getElementById("scroller");
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }

  function endEphemeral(reason) {
    const gone = document.getElementById("gone");
    if (gone) {
      gone.textContent = reason === "writer_changed"
        ? "This ephemeral group has ended: the cluster's writer changed, and the group went with it."
        : reason === "left" ? "You left this ephemeral group."
        : "This ephemeral group has ended: everyone has left.";
      gone.hidden = false;
    }
    document.querySelectorAll("#ephemeral-composer textarea, #ephemeral-composer button").forEach((control) => { control.disabled = true; });
  }

  function showEphemeralMembers(members) {
    const list = document.getElementById("members");
    if (!list) return;
    list.replaceChildren(...members.map((member) => {
      const item = element("li");
      item.dataset.member = member.id;
      const dot = element("span", "presence");
      dot.setAttribute("aria-hidden", "true");
      item.append(dot, element("span", "visually-hidden presence-text", "offline"), member.username);
      item.appendChild(element("span", "tag", "#" + member.tag));
      if (member.id === me) item.append(" ", element("span", "hint", "(you)"));
      return item;
    }));
    const count = document.querySelector("#group-info .count");
    if (count) count.textContent = String(members.length);
  }

  if (ephemeralPane) {
    const form = document.getElementById("ephemeral-composer");
    const box = form ? form.querySelector("textarea") : null;
    const error = document.getElementById("composer-error");
    if (form && box) {
      box.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          form.requestSubmit();
        }
      });
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const content = box.value;
        if (!content.trim()) return;
        if (error) error.hidden = true;
        try {
          const response = await call("POST", ephemeralPane.dataset.post, { content });
          if (response.status === 201) {
            showEphemeral(await response.json());
            box.value = "";
          } else if (response.status === 404) {
            endEphemeral("writer_changed");
          } else {
            const answer = await response.json().catch(() => ({}));
            if (error) { error.textContent = "Not sent: " + (answer.error || response.status); error.hidden = false; }
          }
        } catch (_) {
          if (error) { error.textContent = "Not sent: the server did not answer. Try again."; error.hidden = false; }
        }
      });
      box.focus({ preventScroll: true });
    }
    const scroller = document.getElementById("scroller");
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/api/events?after=" + encodeURIComponent(String(lastEpoch)));
    const track = (event) => {
      if (event.lastEventId) lastEpoch = Math.max(lastEpoch, Number(event.lastEventId) || 0);
    };
    const on = (kind, handle) => source.addEventListener(kind, (event) => {
      track(event);
      let data = null;
      try { data = JSON.parse(event.data); } catch (_) { return; }
      handle(data);
    });
    source.addEventListener("ready", (event) => {
      try { showOnline(JSON.parse(event.data).online); } catch (_) { /* an older node says nothing */ }
      const recovered = failures > 0 || unavailable > 0;
      failures = 0;
      unavailable = 0;
      troubleSince = 0;
      if (recovered) {
        say("Reconnected", 2500);
        refreshHistory();
        refreshChats();
        sendUnsent();
      } else if (banner && !banner.textContent.startsWith("Reconnected")) {
        quiet();
      }
    });
    on("presence", (change) => setOnline(change.user, Boolean(change.online)));
    on("ephemeral_message", (message) => {
      if (ephemeralPane && message.group === ephemeralPane.dataset.chat) showEphemeral(message);
    });
    on("ephemeral_members", (change) => {
      if (!ephemeralPane || change.group !== ephemeralPane.dataset.chat) return;
      if (change.left === me) { endEphemeral("left"); return; }
      showEphemeralMembers(change.members || []);
    });
    on("ephemeral_ended", (ended) => {
      if (ephemeralPane && ended.group === ephemeralPane.dataset.chat) endEphemeral(ended.reason);
    });
    on("typing", (notice) => {
      if (!chat || notice.chat !== openChat || !notice.user) return;
      typists.set(notice.user.id, { name: notice.user.username, until: Date.now() + TYPING_SHOWN_MS });
      showTyping();
    });
    on("message", (message) => {
      if (chat && message.chat === openChat) {
        show(message);
        scheduleRead();
        if (message.sender && typists.delete(message.sender.id)) showTyping();
      }
      bump(message);
    });
    on("message_deleted", (deleted) => {
      if (chat && deleted.chat === openChat) unshow(deleted.id);
      if (sidebarItem(deleted.chat)) refreshChats();
    });
    on("message_edited", (edited) => {
      const item = document.getElementById("m-" + edited.id);
      if (item) {
        const content = item.querySelector(".content");
        if (content && !item.querySelector(".editor")) content.textContent = edited.content;
        setEdited(item, edited.edited_at);
      }
      // The event does not say whether it was the conversation's last message: ask for the list.
      const entry = sidebarItem(edited.chat);
      if (entry && Number(entry.dataset.epoch) <= Number(edited.epoch)) refreshChats();
    });
    on("reaction", (change) => {
      const item = document.getElementById("m-" + change.message);
      if (!item) return;
      const reactions = readReactions(item);
      let reaction = reactions.find((entry) => entry.emoji === change.emoji);
      if (!reaction) { reaction = { emoji: change.emoji, count: 0, me: false }; reactions.push(reaction); }
      reaction.count = Number(change.count) || 0;
      if (change.user === me) reaction.me = Boolean(change.on);
      setReactions(item, reactions);
    });
    on("read", (marker) => {
      const item = sidebarItem(marker.chat);
      if (!item) return;
      const read = Number(marker.read_epoch) || 0;
      item.dataset.read = String(Math.max(read, Number(item.dataset.read) || 0));
      if (marker.chat === openChat) readSent = Math.max(readSent, read);
      if (read >= (Number(item.dataset.epoch) || 0)) setUnread(item, 0);
      else refreshChats();
    });
    on("membership", onMembership);
    source.onerror = () => {
      if (movingAway) return;
      failures += 1;
      if (!troubleSince) troubleSince = Date.now();
      // A blip that heals within a moment is not worth a banner.
      clearTimeout(bannerTimer);
      bannerTimer = setTimeout(() => { if ((failures > 0 || unavailable > 0) && !movingAway) say("Reconnecting…"); }, 1500);
      // EventSource retries network errors itself; an HTTP error (503 while the node pauses) closes it.
      if (source.readyState === EventSource.CLOSED) source.close();
      probe();
    };
  }

  // Something failed: ask this node whether it is still there.
  function suspectNode() {
    if (movingAway) return;
    if (!troubleSince) troubleSince = Date.now();
    probe();
  }

  async function probe() {
    if (probing || movingAway) return;
    probing = true;
    try {
      const response = await call("GET", "/api/me", undefined, 1500);
      if (response.status === 401) { location.assign("/"); return; }
      if (response.ok) {
        unavailable = 0;
        troubleSince = 0;
        if (!source || source.readyState === EventSource.CLOSED) reconnectSoon(500);
        clearTimeout(resendTimer);
        resendTimer = setTimeout(sendUnsent, 1000);
        return;
      }
      // Up but not serving (503 while it changes role): wait a little, then try another node.
      unavailable += 1;
      if (nameservers.length && unavailable >= 6) { moveAway(); return; }
      reconnectSoon(Math.min(1000 * unavailable, 5000));
    } catch (_) {
      // No answer at all: this input node is gone (or we are offline).
      if (navigator.onLine === false) {
        say("You are offline; your messages wait here.");
        window.addEventListener("online", () => { failures = 0; connect(); }, { once: true });
        return;
      }
      moveAway();
    } finally {
      probing = false;
    }
  }

  function reconnectSoon(delay) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => { if (!movingAway) connect(); }, delay);
  }

  // What travels to the next node: the draft and every message not confirmed yet.
  function placeToKeep() {
    return {
      path,
      draft: textarea ? textarea.value : "",
      unsent: unsent.map(({ content, client_id, reply_to }) => ({ content, client_id, reply_to: reply_to || null })),
    };
  }

  // The first nameserver, in order, that answers at all. A cross-origin request without CORS
  // (`no-cors`) resolves with an opaque answer when the server is up and fails when nothing answers,
  // which is all a page can learn about another origin, and all it needs.
  async function firstLiveNameserver() {
    for (const candidate of nameservers) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 1500);
      try {
        await fetch(candidate + "/api/endpoints", { mode: "no-cors", cache: "no-store", credentials: "omit", signal: controller.signal });
        return candidate;
      } catch (_) {
        // Down, or too slow to be worth waiting for: the next one.
      } finally {
        clearTimeout(timer);
      }
    }
    return "";
  }

  // Leaves for a nameserver at the same path, with the place to keep in the fragment. The nameserver
  // stops handing out a dead node within a second of its death, so the move waits that long after the
  // first trouble seen. When no nameserver answers either, the page stays, says so, and tries its own
  // node again (which leads here again while it is still down).
  function moveAway() {
    if (movingAway) return;
    if (!nameservers.length) {
      say("Connection lost — retrying…");
      reconnectSoon(2000);
      return;
    }
    movingAway = true;
    say("Connection lost — moving to another server…");
    if (source) source.close();
    clearTimeout(retryTimer);
    const wait = Math.max(0, (troubleSince || Date.now()) + 1200 - Date.now());
    setTimeout(async () => {
      const target = await firstLiveNameserver();
      if (!target) {
        movingAway = false;
        say("No server answers — retrying…");
        reconnectSoon(2000);
        return;
      }
      const place = placeToKeep();
      if (textarea) store.set(draftKey(path), place.draft);
      saveUnsent();
      location.replace(target + location.pathname + location.search + "#resume=" + encodeURIComponent(JSON.stringify(place)));
    }, wait);
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
      movingAway = false;
      connect();
    }
  });

  // ---- start -------------------------------------------------------------------------------------------------------
  if (chat) {
    decorate();
    messageItems().forEach(addActions);
    scrollDown();
    if (scroller && scroller.scrollHeight <= scroller.clientHeight + 10) loadOlder();
    if (location.hash.startsWith("#m-")) scrollToMessage(decodeURIComponent(location.hash.slice(3)));
    else if (textarea) textarea.focus({ preventScroll: true });
    unsent.forEach((entry) => pendingElement(entry));
    if (resumedTo === path && (unsent.length || (textarea && textarea.value))) say("Reconnected — sending what was waiting", 3000);
    else if (resumedTo === path) say("Reconnected", 2500);
    sendUnsent();
    scheduleRead();
  } else if (resumedTo) {
    say("Reconnected", 2500);
  }
  updateTitle();
  connect();
})();
