// logwarden chat page. Speaks the WebSocket protocol of docs/protocol.md (version 1).
// Plain script, no build step, no external resources: the page is served with
// CSP default-src 'self', so every handler is attached here, never inline.
(() => {
  "use strict";

  const AGE_KEY = "logwarden.age_confirmed";
  const INTERESTS_KEY = "logwarden.interests";
  const TYPING_IDLE_MS = 3000; // send typing:false after 3 s without a keystroke
  const REALLY_RESET_MS = 5000; // "Really?" falls back to "Stop" after 5 s
  // The protocol's report_window is not announced in hello (yet); a report after the
  // server's window only earns a clear `nothing_to_report` error, so guessing is safe.
  const DEFAULT_REPORT_WINDOW_S = 300; // the server's default report_window
  const COUNTER_FROM = 0.8; // show the character counter from 80 % of the limit
  const COMMENT_MAX = 500;
  // A receipt token as the server hands it out (32 random bytes, URL-safe base64); anything
  // else is not put in a link.
  const RECEIPT_TOKEN = /^[A-Za-z0-9_-]{43}$/;

  const REPORT_LABELS = {
    harassment: "harassment",
    hate: "hate speech",
    sexual_content: "sexual content",
    minor_safety: "a possible minor",
    threats: "threats",
    spam: "spam",
    other: "something else",
  };

  const LEFT_TEXT = {
    stopped: "Stranger has disconnected.",
    next: "Stranger has disconnected.",
    disconnected: "Stranger has disconnected.",
    timeout: "Stranger's connection timed out.",
    abuse: "Stranger was disconnected for breaking the rules.",
    server_shutdown: "The server is restarting. Press New to start again.",
  };

  // Personal information the server warned about (`warning` in docs/protocol.md), in plain
  // words: `noun` completes "This message looks like it shares …", `why` says why it matters.
  const FINDING_KINDS = {
    phone: {
      label: "Phone number",
      noun: "a phone number",
      why: "Strangers can use it to call or text you, and to find you outside this chat.",
    },
    email: {
      label: "Email address",
      noun: "an email address",
      why: "Strangers can use it to contact you and to look up your other accounts.",
    },
    handle: {
      label: "Social or messaging account",
      noun: "a social or messaging account",
      why: "It lets a stranger reach you on another app, away from the safety tools here.",
    },
    url: {
      label: "Link",
      noun: "a link",
      why: "A link can lead back to you, like a profile or a page with your name on it.",
    },
    address: {
      label: "Street address",
      noun: "a street address",
      why: "It shows where you live or spend time, so someone could find you in person.",
    },
    card: {
      label: "Payment card number",
      noun: "a payment card number",
      why: "Anyone who sees it could spend your money. Never share it in a chat.",
    },
    ip: {
      label: "IP address",
      noun: "an IP address",
      why: "It can show roughly where you are and be used to attack your connection.",
    },
    age: {
      label: "Your age or school",
      noun: "your age or school",
      why: "It helps a stranger work out who you are and where to find you.",
    },
  };
  const OTHER_KIND = {
    label: "Personal information",
    noun: "personal information",
    why: "Once a stranger has it, you can't take it back.",
  };

  // `ended` with reason `safety` reaches both people; only the one at risk got `safety` first.
  const SAFETY_ENDED_TEXT = "This chat was ended for your safety.";
  const SAFETY_ENDED_OTHER = "This chat was ended by our safety checks.";

  const CLOSE_TEXT = {
    1008: "You were disconnected for sending too much too fast.",
    1009: "You were disconnected: that was too much data at once.",
    1012: "The server is restarting.",
    4000: "Your connection timed out.",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    gate: $("gate"), gateForm: $("gate-form"), ageConfirm: $("age-confirm"), gateError: $("gate-error"),
    lobby: $("lobby"), chipsField: $("chips-field"), chips: $("chips"), interests: $("interests"),
    interestsHint: $("interests-hint"), start: $("start"),
    chat: $("chat"), status: $("status"), editInterests: $("edit-interests"), report: $("report"),
    log: $("log"), receipt: $("receipt"), receiptLink: $("receipt-link"), typing: $("typing"), composer: $("composer"), stop: $("stop"), stopLabel: $("stop-label"),
    message: $("message"), counter: $("counter"), send: $("send"),
    dialog: $("report-dialog"), reportForm: $("report-form"), reportReason: $("report-reason"),
    reportError: $("report-error"), reportComment: $("report-comment"),
    reportCount: $("report-comment-count"), reportCancel: $("report-cancel"),
    warning: $("warning-dialog"), warningLead: $("warning-lead"), warningText: $("warning-text"),
    warningKinds: $("warning-kinds"), warningEdit: $("warning-edit"),
    warningCancel: $("warning-cancel"), warningSend: $("warning-send"),
    safety: $("safety-notice"), safetyMessage: $("safety-message"), safetyDismiss: $("safety-dismiss"),
  };

  const limits = {
    max_message_chars: 1000,
    max_interests: 10,
    max_interest_chars: 32,
    report_window: DEFAULT_REPORT_WINDOW_S,
  };

  // phase: offline | connecting | idle | waiting | chatting | stopping
  const state = {
    ws: null,
    phase: "offline",
    queued: null, // a frame to send once hello arrives
    interests: loadInterests(),
    pending: [], // own messages waiting for `sent`, oldest first
    typingSent: false,
    typingTimer: 0,
    really: false,
    reallyTimer: 0,
    endedAt: 0, // when the last chat ended (ms), for the report window
    reportTimer: 0,
    reported: false,
    reportLine: null, // the "Sending your report…" line, confirmed in place
    lastSent: "", // type of the last frame sent, to tell what an error answers
    chat: null, // the `chat` id of the last `matched`, named in reports
    // The receipt of the last `matched`. This page holds the only copy (the server keeps a
    // digest), so it is shown once the chat ends and kept until the next chat starts.
    receipt: null,
    // The message the server warned about while its dialog is open: {text, findings}.
    warned: null,
    safetyNotice: false, // a `safety` frame came in this chat
  };

  // ---------------------------------------------------------------- helpers

  function chars(text) {
    // The server counts code points, not UTF-16 units.
    return Array.from(text).length;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function clockTime(at) {
    const d = typeof at === "number" ? new Date(at) : new Date();
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function joinList(items) {
    if (items.length <= 1) return items.join("");
    return items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
  }

  function loadInterests() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(INTERESTS_KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((s) => typeof s === "string").slice(0, 10) : [];
    } catch {
      return [];
    }
  }

  function saveInterests() {
    try {
      sessionStorage.setItem(INTERESTS_KEY, JSON.stringify(state.interests));
    } catch {
      // Storage may be disabled; interests then last for this page only.
    }
  }

  // ---------------------------------------------------------------- age gate

  function ageConfirmed() {
    try {
      return sessionStorage.getItem(AGE_KEY) === "yes";
    } catch {
      return false;
    }
  }

  function onGateSubmit(event) {
    event.preventDefault();
    if (!ui.ageConfirm.checked) {
      show(ui.gateError, true);
      ui.ageConfirm.setAttribute("aria-invalid", "true");
      ui.ageConfirm.focus();
      return;
    }
    try {
      sessionStorage.setItem(AGE_KEY, "yes");
    } catch {
      // Without storage the gate simply comes back on reload.
    }
    enterLobby();
  }

  function enterLobby() {
    show(ui.gate, false);
    show(ui.chat, false);
    show(ui.lobby, true);
    document.body.dataset.view = "lobby";
    renderChips();
    ui.interests.focus();
    if (!state.ws) connect();
  }

  function enterChat() {
    show(ui.gate, false);
    show(ui.lobby, false);
    show(ui.chat, true);
    document.body.dataset.view = "chat";
  }

  // ---------------------------------------------------------------- interests

  function hint(text, isError) {
    ui.interestsHint.textContent = text;
    ui.interestsHint.classList.toggle("hint-error", Boolean(isError));
  }

  function defaultHint() {
    hint(`Press Enter or type a comma after each one. Up to ${limits.max_interests}.`, false);
  }

  function addInterest(raw) {
    const value = raw.trim().replace(/\s+/g, " ");
    if (!value) return true;
    if (chars(value) > limits.max_interest_chars) {
      hint(`"${value.slice(0, 40)}…" is too long: ${limits.max_interest_chars} characters at most.`, true);
      return false;
    }
    if (state.interests.some((i) => i.toLowerCase() === value.toLowerCase())) return true;
    if (state.interests.length >= limits.max_interests) {
      hint(`That's the maximum of ${limits.max_interests} interests.`, true);
      return false;
    }
    state.interests.push(value);
    defaultHint();
    return true;
  }

  function commitInterestInput() {
    const ok = addInterest(ui.interests.value);
    if (ok) ui.interests.value = "";
    saveInterests();
    renderChips();
    return ok;
  }

  function removeInterest(index) {
    const [removed] = state.interests.splice(index, 1);
    saveInterests();
    renderChips();
    defaultHint();
    hint(`Removed ${removed}.`, false);
    ui.interests.focus();
  }

  function renderChips() {
    ui.chips.replaceChildren(
      ...state.interests.map((interest, index) => {
        const li = document.createElement("li");
        li.className = "chip";
        const label = document.createElement("span");
        label.textContent = interest;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.setAttribute("aria-label", `Remove ${interest}`);
        remove.textContent = "×";
        remove.addEventListener("click", () => removeInterest(index));
        li.append(label, remove);
        return li;
      }),
    );
    show(ui.chips, state.interests.length > 0);
    ui.interests.placeholder = state.interests.length ? "Add another…" : "chess, jazz, hiking…";
  }

  function onInterestsInput() {
    const value = ui.interests.value;
    if (!value.includes(",")) return;
    const parts = value.split(",");
    const rest = parts.pop();
    for (const part of parts) addInterest(part);
    ui.interests.value = rest.trimStart();
    saveInterests();
    renderChips();
  }

  function onInterestsKeydown(event) {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      if (ui.interests.value.trim()) commitInterestInput();
      else startChat();
    } else if (event.key === "Backspace" && ui.interests.value === "" && state.interests.length) {
      event.preventDefault();
      removeInterest(state.interests.length - 1);
    }
  }

  // ---------------------------------------------------------------- socket

  function wsUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function connect() {
    if (state.ws) return;
    setPhase("connecting");
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch {
      onClose({ code: 1006 });
      return;
    }
    state.ws = ws;
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === "string") handleFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (state.ws === ws) onClose(event);
    });
  }

  function send(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(frame));
      state.lastSent = frame.type;
      return true;
    }
    return false;
  }

  function onClose(event) {
    state.ws = null;
    state.queued = null;
    dropWarning();
    failAllPending("Not delivered: the connection was lost.");
    resetTyping();
    showStrangerTyping(false);
    state.endedAt = 0; // a report must come over the connection that had the chat
    showReceipt(true); // a lost connection ends the chat too; the receipt still works
    setPhase("offline");
    const why = CLOSE_TEXT[event.code] || "The connection to the server was lost.";
    setStatus(why);
    if (!ui.chat.hidden) offerReconnect(why);
  }

  function offerReconnect(why) {
    const li = systemLine(why + " ", "error");
    const button = document.createElement("button");
    button.type = "button";
    button.id = "reconnect";
    button.className = "btn btn-small btn-primary";
    button.textContent = "Reconnect";
    button.addEventListener("click", () => {
      button.disabled = true;
      button.removeAttribute("id");
      connect();
    });
    li.append(button);
    button.focus();
  }

  // ---------------------------------------------------------------- frames

  function handleFrame(frame) {
    switch (frame.type) {
      case "hello": return onHello(frame);
      case "waiting": return onWaiting(frame);
      case "matched": return onMatched(frame);
      case "message": return onStrangerMessage(frame);
      case "sent": return onSent(frame);
      case "typing": return showStrangerTyping(frame.active === true);
      case "stranger_left": return onStrangerLeft(frame);
      case "ended": return onEnded(frame);
      case "reported": return onReported();
      case "warning": return onWarning(frame);
      case "safety": return onSafety(frame);
      case "ping": return send({ type: "pong" });
      case "error": return onError(frame);
      default: return undefined; // unknown frames are ignored, as the protocol asks
    }
  }

  function onHello(frame) {
    const l = frame.limits || {};
    for (const key of ["max_message_chars", "max_interests", "max_interest_chars", "report_window"]) {
      if (Number.isInteger(l[key]) && l[key] > 0) limits[key] = l[key];
    }
    if (Number.isInteger(frame.report_window)) limits.report_window = frame.report_window;
    setPhase("idle");
    if (!ui.lobby.hidden) defaultHint();
    if (state.queued) {
      const queued = state.queued;
      state.queued = null;
      send(queued);
      setPhase("waiting");
      return;
    }
    if (!ui.chat.hidden) {
      systemLine("Reconnected. Press New to meet someone.");
      setStatus("Connected. Press New to meet someone.");
    } else {
      setStatus("Connected.");
    }
  }

  function onWaiting(frame) {
    setPhase("waiting");
    const interests = Array.isArray(frame.interests) ? frame.interests : [];
    const named = interests.length > 4 ? [...interests.slice(0, 3), `${interests.length - 3} more`] : interests;
    setStatus(named.length ? `Looking for a stranger who likes ${joinList(named)}…` : "Looking for a stranger…");
  }

  function onMatched(frame) {
    state.chat = typeof frame.chat === "string" ? frame.chat : null;
    state.receipt = typeof frame.receipt === "string" && RECEIPT_TOKEN.test(frame.receipt) ? frame.receipt : null;
    showReceipt(false);
    clearReportTimer();
    state.safetyNotice = false;
    state.reported = false;
    state.endedAt = 0;
    const shared = Array.isArray(frame.interests) ? frame.interests : [];
    const text = shared.length
      ? `You're now chatting with a stranger. You both like: ${joinList(shared)}.`
      : "You're now chatting with a random stranger.";
    setPhase("chatting");
    setStatus(text);
    systemLine(text + " Say hi!", "start");
    ui.message.focus();
  }

  function onStrangerMessage(frame) {
    showStrangerTyping(false);
    if (typeof frame.text === "string") appendMessage("them", frame.text, frame.at);
  }

  function onSent(frame) {
    const li = state.pending.shift();
    if (!li) return;
    li.classList.remove("is-sending");
    li.classList.add("is-delivered");
    setMeta(li, clockTime(frame.at), "Delivered");
  }

  function resetTyping() {
    // The chat is over: nothing to tell the stranger any more.
    clearTimeout(state.typingTimer);
    state.typingSent = false;
  }

  function endChat(text, kind) {
    const warned = dropWarning(); // the message can no longer be sent, nor needs cancelling
    clearTimeout(state.reallyTimer);
    state.really = false;
    resetTyping();
    showStrangerTyping(false);
    state.endedAt = Date.now();
    setPhase("idle");
    setStatus(text);
    systemLine(text, kind || "end");
    showReceipt(true);
    scheduleReportExpiry();
    if (warned) ui.stop.focus(); // the dialog had focus; the message box is off now
  }

  function onStrangerLeft(frame) {
    endChat(LEFT_TEXT[frame.reason] || "Stranger has disconnected.");
  }

  function onEnded(frame) {
    if (frame.reason === "cancelled") {
      setPhase("idle");
      setStatus("You stopped looking. Press New to try again.");
      systemLine("You stopped looking.");
      ui.stop.focus();
    } else if (frame.reason === "safety") {
      endChat(state.safetyNotice ? SAFETY_ENDED_TEXT : SAFETY_ENDED_OTHER, "safety-end");
      ui.stop.focus();
    } else {
      endChat("You have disconnected.");
      ui.stop.focus();
    }
  }

  function onReported() {
    state.reported = true;
    updateControls();
    const text = "Thanks. Your report was sent, and you won't be paired with this stranger again.";
    const line = state.reportLine || systemLine("");
    state.reportLine = null;
    line.className = "sys sys-report-confirm";
    line.textContent = state.phase === "chatting" ? text + " Press Stop to leave." : text;
  }

  // An error names the frame type it answers in `in_reply_to` when the server knows it;
  // otherwise it answers what this page sent last (replies come in the order of the frames).
  const MESSAGE_ONLY_ERRORS = new Set(["message_too_long", "empty_message"]);
  // no_warning: "Don't send" raced the server, which had already dropped the message.
  const SILENT_ERRORS = new Set(["already_joined", "not_joined", "no_warning"]);

  function onError(frame) {
    const code = typeof frame.code === "string" ? frame.code : "";
    const last = typeof frame.in_reply_to === "string" ? frame.in_reply_to : state.lastSent;
    if (code === "not_joined" && state.phase === "stopping") setPhase("idle"); // raced a departure
    if (SILENT_ERRORS.has(code)) return;
    const aboutMessage =
      MESSAGE_ONLY_ERRORS.has(code) ||
      (last === "message" && (code === "rate_limited" || code === "not_in_chat"));
    // A refused message shows the reason under itself; no second line for it.
    if (aboutMessage && failPending(false, frame.message)) return;
    if (code === "log_unavailable" && failPending(true, frame.message)) return;
    if (!aboutMessage && (last === "typing" || last === "pong" || last === "cancel")) {
      return; // typing indicators are best effort; never bother the user about them
    }
    if (last === "report" && state.reportLine) {
      state.reportLine.remove();
      state.reportLine = null;
      if (code === "nothing_to_report" || code === "already_reported") state.reported = true;
      updateControls();
    }
    systemLine(humanise(frame.message), "error");
  }

  function humanise(message) {
    if (typeof message !== "string" || !message.trim()) return "Something went wrong.";
    const text = message.trim();
    return text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
  }

  // ---------------------------------------------------------------- log

  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
  }

  function appendToLog(li) {
    const stick = nearBottom();
    ui.log.append(li);
    if (stick || li.classList.contains("me")) ui.log.scrollTop = ui.log.scrollHeight;
    return li;
  }

  function systemLine(text, kind) {
    const previous = ui.log.lastElementChild;
    if (kind === "error" && previous && previous.dataset.text === text) {
      // The same error again (a flood, a retry): count it instead of repeating it.
      const times = Number(previous.dataset.times || "1") + 1;
      previous.dataset.times = String(times);
      previous.textContent = `${text} (×${times})`;
      return previous;
    }
    const li = document.createElement("li");
    li.dataset.text = text;
    li.className = "sys" + (kind ? " sys-" + kind : "");
    li.textContent = text;
    return appendToLog(li);
  }

  function setMeta(li, time, label) {
    const meta = li.querySelector(".meta");
    meta.textContent = label ? `${label} · ${time}` : time;
  }

  function appendMessage(who, text, at) {
    const li = document.createElement("li");
    li.className = "msg " + who;
    const speaker = document.createElement("span");
    speaker.className = "visually-hidden";
    speaker.textContent = who === "me" ? "You: " : "Stranger: ";
    const body = document.createElement("p");
    body.className = "bubble";
    body.textContent = text;
    const meta = document.createElement("span");
    meta.className = "meta";
    li.append(speaker, body, meta);
    if (who === "me") {
      li.classList.add("is-sending");
      meta.textContent = "Sending…";
    } else {
      meta.textContent = clockTime(at);
    }
    return appendToLog(li);
  }

  function markFailed(li, reason) {
    li.classList.remove("is-sending");
    li.classList.add("is-failed");
    li.querySelector(".meta").textContent = reason;
  }

  function failPending(oldest, message) {
    // Rejections (rate limit, too long, not in chat) answer the frame just sent, so the
    // newest pending message is the one refused; a failed log write answers in order.
    const li = oldest ? state.pending.shift() : state.pending.pop();
    if (li) markFailed(li, "Not sent: " + humanise(message));
    return Boolean(li);
  }

  function failAllPending(reason) {
    for (const li of state.pending) markFailed(li, reason);
    state.pending = [];
  }

  // ---------------------------------------------------------------- typing

  function setTyping(active) {
    clearTimeout(state.typingTimer);
    if (active === state.typingSent) return;
    state.typingSent = active;
    if (state.phase === "chatting") send({ type: "typing", active });
  }

  function onMessageInput() {
    updateCounter();
    if (state.phase !== "chatting") return;
    if (!ui.message.value.trim()) {
      setTyping(false);
      return;
    }
    if (!state.typingSent) setTyping(true);
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
  }

  function showStrangerTyping(active) {
    const stick = nearBottom();
    show(ui.typing, active);
    if (active && stick) ui.log.scrollTop = ui.log.scrollHeight;
  }

  // ---------------------------------------------------------------- composer

  function updateCounter() {
    const used = chars(ui.message.value.trim());
    const max = limits.max_message_chars;
    const near = state.phase === "chatting" && used >= Math.floor(max * COUNTER_FROM);
    show(ui.counter, near);
    ui.counter.textContent = near ? `${used} / ${max}` : "";
    ui.counter.classList.toggle("over", used > max);
    ui.send.disabled = state.phase !== "chatting" || used > max;
  }

  function sendMessage() {
    if (state.phase !== "chatting") return;
    const text = ui.message.value.trim();
    if (!text) return;
    if (chars(text) > limits.max_message_chars) {
      systemLine(`That message is too long: ${limits.max_message_chars} characters at most.`, "error");
      return;
    }
    setTyping(false);
    if (!send({ type: "message", text })) return;
    state.pending.push(appendMessage("me", text));
    ui.message.value = "";
    updateCounter();
    cancelReally();
    ui.message.focus();
  }

  function onMessageKeydown(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  }

  // ---------------------------------------------------------------- stop / new

  function cancelReally() {
    clearTimeout(state.reallyTimer);
    if (!state.really) return;
    state.really = false;
    updateControls();
  }

  function onStopPressed() {
    switch (state.phase) {
      case "chatting":
        if (!state.really) {
          state.really = true;
          updateControls();
          clearTimeout(state.reallyTimer);
          state.reallyTimer = setTimeout(cancelReally, REALLY_RESET_MS);
          return;
        }
        state.really = false;
        clearTimeout(state.reallyTimer);
        setTyping(false);
        send({ type: "stop" });
        setPhase("stopping");
        return;
      case "waiting":
        send({ type: "stop" });
        setPhase("stopping");
        return;
      case "idle":
      case "offline":
        startChat();
        return;
      default:
        return undefined;
    }
  }

  function startChat() {
    if (ui.interests.value.trim() && !commitInterestInput()) {
      ui.interests.focus();
      return;
    }
    const frame = { type: "join", mode: "text" };
    if (state.interests.length) frame.interests = state.interests.slice();
    enterChat();
    ui.log.replaceChildren();
    hideSafety(); // it spoke of the last chat
    state.pending = [];
    state.reportLine = null;
    showStrangerTyping(false);
    systemLine(
      state.interests.length
        ? "If nobody shares your interests soon, you'll meet a random stranger. Press Stop (or Esc) twice to leave a chat."
        : "Press Stop (or Esc) twice to leave a chat.",
      "tip",
    );
    if (state.phase === "idle") {
      send(frame);
      setPhase("waiting");
    } else {
      state.queued = frame;
      connect();
    }
    setStatus("Looking for a stranger…");
    ui.stop.focus();
  }

  function onGlobalKeydown(event) {
    if (event.key !== "Escape" || event.isComposing || ui.chat.hidden) return;
    if (ui.dialog.open || ui.warning.open) return; // Esc belongs to the dialog
    event.preventDefault();
    onStopPressed();
  }

  // ---------------------------------------------------------------- report

  function reportable() {
    if (state.reported || !state.ws) return false;
    if (state.phase === "chatting") return true;
    return state.endedAt > 0 && Date.now() - state.endedAt < limits.report_window * 1000;
  }

  function clearReportTimer() {
    clearTimeout(state.reportTimer);
  }

  function scheduleReportExpiry() {
    clearReportTimer();
    state.reportTimer = setTimeout(updateControls, limits.report_window * 1000 + 50);
  }

  function openReport() {
    if (!reportable()) return;
    ui.reportForm.reset();
    show(ui.reportError, false);
    ui.reportReason.removeAttribute("aria-invalid");
    updateCommentCount();
    ui.dialog.showModal();
    ui.reportReason.focus();
  }

  function updateCommentCount() {
    ui.reportCount.textContent = `${chars(ui.reportComment.value)} / ${COMMENT_MAX}`;
  }

  function onReportSubmit(event) {
    event.preventDefault();
    const reason = ui.reportReason.value;
    if (!REPORT_LABELS[reason]) {
      show(ui.reportError, true);
      ui.reportReason.setAttribute("aria-invalid", "true");
      ui.reportReason.focus();
      return;
    }
    const frame = { type: "report", reason };
    if (state.chat) frame.chat = state.chat; // the chat on screen, even if a new one began
    const comment = ui.reportComment.value.trim();
    if (comment) frame.comment = Array.from(comment).slice(0, COMMENT_MAX).join("");
    ui.dialog.close();
    if (send(frame)) {
      state.reportLine = systemLine(`Sending your report (${REPORT_LABELS[reason]})…`);
    } else {
      systemLine("Your report could not be sent: you are offline.", "error");
    }
    ui.report.disabled = true;
  }

  // ---------------------------------------------------------------- warning

  function kindInfo(kind) {
    return Object.hasOwn(FINDING_KINDS, kind) ? FINDING_KINDS[kind] : OTHER_KIND;
  }

  // The findings' spans as [start, end) code point ranges of `points`, sorted, clipped to the
  // text, overlaps merged; anything malformed is left out rather than trusted.
  function findingRanges(findings, length) {
    const ranges = findings
      .filter((f) => Number.isInteger(f.start) && Number.isInteger(f.end))
      .map((f) => ({ start: Math.max(0, f.start), end: Math.min(length, f.end), kinds: [f.kind] }))
      .filter((r) => r.start < r.end)
      .sort((a, b) => a.start - b.start || b.end - a.end);
    const merged = [];
    for (const range of ranges) {
      const last = merged[merged.length - 1];
      if (last && range.start < last.end) {
        last.end = Math.max(last.end, range.end);
        if (!last.kinds.includes(range.kinds[0])) last.kinds.push(range.kinds[0]);
      } else {
        merged.push(range);
      }
    }
    return merged;
  }

  // The message as text nodes and <mark>s, built with DOM APIs only: the text is never parsed.
  // Spans count Unicode code points (docs/protocol.md), so slice Array.from(text), not text.
  function renderMarked(container, text, findings) {
    const points = Array.from(text);
    const nodes = [];
    let at = 0;
    for (const range of findingRanges(findings, points.length)) {
      if (range.start > at) nodes.push(document.createTextNode(points.slice(at, range.start).join("")));
      const mark = document.createElement("mark");
      mark.className = "finding";
      mark.dataset.kind = range.kinds.join(" ");
      mark.title = range.kinds.map((kind) => kindInfo(kind).label).join(", ");
      mark.textContent = points.slice(range.start, range.end).join("");
      nodes.push(mark);
      at = range.end;
    }
    if (at < points.length) nodes.push(document.createTextNode(points.slice(at).join("")));
    container.replaceChildren(...nodes);
  }

  function onWarning(frame) {
    const text = typeof frame.text === "string" ? frame.text : "";
    const findings = (Array.isArray(frame.findings) ? frame.findings : []).filter(
      (f) => f && typeof f === "object" && typeof f.kind === "string",
    );
    // The warning answers one of our messages in place of `sent`: take it off the transcript,
    // for it was not sent (the one with this text, else the oldest still waiting).
    const index = state.pending.findIndex((li) => li.querySelector(".bubble").textContent === text);
    const [li] = state.pending.splice(index >= 0 ? index : 0, 1);
    if (li) li.remove();
    if (state.phase !== "chatting") return; // the chat ended meanwhile: nothing left to decide
    state.warned = { text, findings };

    // One line per kind, in the order they appear; kinds this page does not know are one
    // line of "personal information".
    const kinds = new Map();
    for (const f of findings) {
      const known = Object.hasOwn(FINDING_KINDS, f.kind);
      if (!kinds.has(known ? f.kind : "other")) kinds.set(known ? f.kind : "other", kindInfo(f.kind));
    }
    if (!kinds.size) kinds.set("other", OTHER_KIND);
    const nouns = [...kinds.values()].map((info) => info.noun);
    ui.warningLead.textContent = `This message looks like it shares ${joinList(nouns)}.`;
    renderMarked(ui.warningText, text, findings);
    ui.warningKinds.replaceChildren(
      ...[...kinds].map(([kind, info]) => {
        const item = document.createElement("li");
        item.dataset.kind = kind;
        const label = document.createElement("strong");
        label.textContent = info.label;
        const why = document.createElement("span");
        why.textContent = info.why;
        item.append(label, why);
        return item;
      }),
    );
    if (!ui.warning.open) ui.warning.showModal();
    ui.warningText.scrollTop = 0;
    const mark = ui.warningText.querySelector("mark");
    if (mark) mark.scrollIntoView({ block: "nearest" }); // a long message scrolls in its box
    ui.warningEdit.focus();
  }

  // Close the warning dialog with the sender's choice: "edit", "cancel" (Esc too) or "send".
  function settleWarning(choice) {
    const warned = state.warned;
    state.warned = null;
    if (ui.warning.open) ui.warning.close();
    if (!warned) return;
    if (state.phase !== "chatting") {
      ui.stop.focus();
      return;
    }
    if (choice === "send") {
      if (send({ type: "message", text: warned.text, confirm: true })) {
        state.pending.push(appendMessage("me", warned.text));
      }
    } else if (choice === "edit") {
      // Nothing is sent: the next message the person sends replaces this one.
      ui.message.value = warned.text;
      updateCounter();
      const first = findingRanges(warned.findings, chars(warned.text))[0];
      if (first) {
        // Select the first thing found, so it is easy to change (UTF-16 offsets here).
        const points = Array.from(warned.text);
        const from = points.slice(0, first.start).join("").length;
        focusMessage(from, from + points.slice(first.start, first.end).join("").length);
      } else {
        focusMessage();
      }
      return;
    } else {
      send({ type: "cancel" });
      systemLine("You didn't send that message.");
    }
    focusMessage();
  }

  // Focus the message box with its caret (or a selection) placed explicitly: the dialog hands
  // focus back to the box it came from, and Chromium then leaves the document's caret outside
  // it, so typed keys would go nowhere until the selection is set.
  function focusMessage(from, to) {
    const end = ui.message.value.length;
    ui.message.focus();
    ui.message.setSelectionRange(from ?? end, to ?? from ?? end);
  }

  // The chat ended or the connection went while the dialog was open: the server has dropped
  // the message already, so close the dialog without a decision. Whether it was open.
  function dropWarning() {
    state.warned = null;
    if (!ui.warning.open) return false;
    ui.warning.close();
    return true;
  }

  // ---------------------------------------------------------------- safety notice

  function onSafety(frame) {
    const message =
      typeof frame.message === "string" && frame.message.trim()
        ? frame.message.trim()
        : "If someone is pressuring or threatening you, you don't have to answer. " +
          "You can leave, and report them.";
    ui.safetyMessage.textContent = message;
    ui.safety.dataset.flags = Array.isArray(frame.flags)
      ? frame.flags.filter((f) => typeof f === "string").join(" ")
      : "";
    const stick = nearBottom();
    show(ui.safety, true);
    if (stick) ui.log.scrollTop = ui.log.scrollHeight; // the notice takes room from the log
    state.safetyNotice = true;
  }

  function hideSafety() {
    show(ui.safety, false);
    ui.safetyMessage.textContent = "";
    delete ui.safety.dataset.flags;
  }

  // ---------------------------------------------------------------- receipt

  function showReceipt(visible) {
    const shown = visible && state.receipt !== null;
    if (shown) ui.receiptLink.href = "/receipt/" + state.receipt;
    else ui.receiptLink.removeAttribute("href");
    const stick = nearBottom();
    show(ui.receipt, shown);
    if (stick) ui.log.scrollTop = ui.log.scrollHeight; // the line takes room from the log
  }

  // ---------------------------------------------------------------- rendering

  function setStatus(text) {
    ui.status.textContent = text;
  }

  function setPhase(phase) {
    state.phase = phase;
    document.body.dataset.phase = phase;
    updateControls();
  }

  function updateControls() {
    const phase = state.phase;
    let label = "New";
    if (phase === "chatting") label = state.really ? "Really?" : "Stop";
    else if (phase === "waiting" || phase === "stopping") label = "Stop";
    ui.stopLabel.textContent = label;
    ui.stop.classList.toggle("is-really", state.really);
    ui.stop.classList.toggle("is-new", label === "New");
    ui.stop.disabled = phase === "stopping" || phase === "connecting";
    ui.stop.setAttribute(
      "aria-label",
      label === "Really?" ? "Really stop? Press again to leave this chat"
        : label === "Stop" ? "Stop" : "New chat",
    );

    const chatting = phase === "chatting";
    ui.message.disabled = !chatting;
    ui.message.placeholder = chatting ? "Say hi…" : phase === "waiting" ? "Waiting for a stranger…" : "Chat ended";
    updateCounter();
    ui.report.disabled = !reportable();
    ui.report.textContent = state.reported ? "Reported" : "Report";
    show(ui.editInterests, phase === "idle" || phase === "offline");
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    ui.gateForm.addEventListener("submit", onGateSubmit);
    ui.ageConfirm.addEventListener("change", () => {
      if (ui.ageConfirm.checked) {
        show(ui.gateError, false);
        ui.ageConfirm.removeAttribute("aria-invalid");
      }
    });
    ui.chipsField.addEventListener("click", (event) => {
      if (event.target === ui.chipsField || event.target === ui.chips) ui.interests.focus();
    });
    ui.interests.addEventListener("input", onInterestsInput);
    ui.interests.addEventListener("keydown", onInterestsKeydown);
    ui.interests.addEventListener("blur", () => {
      if (ui.interests.value.trim()) commitInterestInput();
    });
    ui.start.addEventListener("click", startChat);
    ui.editInterests.addEventListener("click", enterLobby);
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      sendMessage();
    });
    ui.message.addEventListener("input", onMessageInput);
    ui.message.addEventListener("keydown", onMessageKeydown);
    ui.stop.addEventListener("click", onStopPressed);
    ui.report.addEventListener("click", openReport);
    ui.reportForm.addEventListener("submit", onReportSubmit);
    ui.reportCancel.addEventListener("click", () => ui.dialog.close());
    ui.reportComment.addEventListener("input", updateCommentCount);
    ui.reportReason.addEventListener("change", () => {
      show(ui.reportError, false);
      ui.reportReason.removeAttribute("aria-invalid");
    });
    ui.dialog.addEventListener("close", () => {
      if (!ui.chat.hidden) (ui.message.disabled ? ui.stop : ui.message).focus();
    });
    ui.warningEdit.addEventListener("click", () => settleWarning("edit"));
    ui.warningCancel.addEventListener("click", () => settleWarning("cancel"));
    ui.warningSend.addEventListener("click", () => settleWarning("send"));
    ui.warning.addEventListener("cancel", (event) => {
      event.preventDefault(); // Esc is "Don't send", the safe choice
      settleWarning("cancel");
    });
    ui.warning.addEventListener("close", () => {
      if (state.warned) settleWarning("cancel"); // closed some other way: still not sent
      else if (!ui.chat.hidden && document.activeElement === document.body) {
        if (ui.message.disabled) ui.stop.focus();
        else focusMessage();
      }
    });
    ui.safetyDismiss.addEventListener("click", () => {
      hideSafety();
      if (ui.message.disabled) ui.stop.focus();
      else focusMessage();
    });
    document.addEventListener("keydown", onGlobalKeydown);

    setPhase("offline");
    if (ageConfirmed()) {
      enterLobby();
    } else {
      document.body.dataset.view = "gate";
    }
  }

  init();
})();
