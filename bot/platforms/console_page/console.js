// The demo console's page: sends pastes and button presses to the bot as JSON and draws its answers,
// the Teams card with Microsoft's Adaptive Cards renderer, the Slack message with SlackPreview.
// A paste leaves the text box as soon as it is sent; the chat shows the copy the bot sends back,
// with secret values cut out, never what was typed. "You are" picks who sends and presses (a rotation
// is asked for by one person and approved by another); a refusal is shown to the person refused only.
(function () {
  "use strict";

  const transcript = document.getElementById("transcript");
  const paste = document.getElementById("paste");
  const send = document.getElementById("send");
  const banner = document.getElementById("banner");
  const channel = document.getElementById("channel");
  const composer = document.getElementById("composer");
  const scanbar = document.getElementById("scanbar");
  const scanNow = document.getElementById("scan-now");
  const scanStatus = document.getElementById("scan-status");
  const posted = {}; // channel message id -> bot message
  const answers = []; // {node, answer, version}
  let view = "teams";
  let hostConfig = null;
  let rendererMissing = null;
  let people = []; // {key, name, role}; who the console can act as
  let person = null; // the key of who is acting now
  const FOLLOW_MS = 500; // how often a card asks for its rotation's progress while the worker moves it

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function scrollDown() {
    transcript.scrollTop = transcript.scrollHeight;
  }

  async function post(path, body) {
    return call(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ as: person }, body)),
    });
  }

  async function call(path, options) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      return { error: "The demo server does not answer. Is `secretbot demo` still running?" };
    }
    try {
      const data = await response.json();
      return response.ok ? data : { error: data.error || "The server answered " + response.status + "." };
    } catch (error) {
      return { error: "The server answered " + response.status + " without a readable body." };
    }
  }

  // --- the conversation ---------------------------------------------------------------------------

  function youBubble() {
    const item = el("li", "you");
    item.appendChild(el("div", "who", person ? personName(person) : "You"));
    const bubble = el("div", "bubble", "…");
    item.appendChild(bubble);
    transcript.appendChild(item);
    return { item: item, bubble: bubble };
  }

  function botMessage(parent) {
    const item = el("li", "bot");
    item.appendChild(el("div", "who", "secretbot"));
    const answer = el("div", "answer");
    answer.appendChild(el("p", "plain", "Checking…"));
    const note = el("div", "note");
    item.appendChild(answer);
    item.appendChild(note);
    item.dataset.state = "checking";
    (parent || transcript).appendChild(item);
    return { item: item, answer: answer, note: note, data: null, version: 0 };
  }

  async function sendPaste(text) {
    if (!text.trim()) return;
    paste.value = ""; // the paste may hold a secret: it does not stay on the page
    send.disabled = true;
    const you = youBubble();
    const bot = botMessage();
    scrollDown();
    const reply = await post("/console/api/messages", { text: text });
    send.disabled = false;
    if (reply.error) {
      you.bubble.textContent = "(not shown)";
      fail(bot, reply.error);
      return;
    }
    you.bubble.textContent = reply.you.text;
    if (reply.you.secret_removed) {
      you.item.appendChild(el("span", "badge", "A secret value was removed from this copy; treat it as leaked."));
    }
    show(bot, reply.answer);
    answers.push(bot);
    scrollDown();
  }

  async function press(bot, verb, id) {
    setNote(bot, "Working…");
    bot.item.dataset.state = "checking";
    const reply = await post("/console/api/actions", { verb: verb, id: id });
    if (reply.error) {
      fail(bot, reply.error);
      return;
    }
    if (reply.notice) {
      setNote(bot, reply.notice, reply.for);
      bot.item.dataset.state = "ready";
      return;
    }
    show(bot, reply.answer);
    setNote(bot, "Updated " + new Date().toLocaleTimeString());
    if (reply.request) {
      // Request rotation on a warning: the warning stays and points at the request, a message of its own.
      const request = botMessage(bot.item.parentNode);
      answers.push(request);
      show(request, reply.request);
      request.item.scrollIntoView({ block: "nearest" });
    }
  }

  // A note under a card; one `forKey` is meant for sees it only while the console acts as them.
  function setNote(bot, text, forKey) {
    bot.note.classList.remove("error");
    if (forKey) {
      bot.note.dataset.for = forKey;
      bot.note.textContent = "Only " + personName(forKey) + " sees this: " + text;
    } else {
      delete bot.note.dataset.for;
      bot.note.textContent = text;
    }
    bot.note.hidden = Boolean(forKey) && forKey !== person;
  }

  function fail(bot, message) {
    if (!bot.data) bot.answer.replaceChildren(el("p", "plain", "No answer."));
    setNote(bot, message);
    bot.note.classList.add("error");
    bot.item.dataset.state = bot.data ? "ready" : "failed";
  }

  function show(bot, answer) {
    bot.data = answer;
    bot.version += 1;
    bot.item.dataset.cause = answer.cause || "none";
    bot.item.dataset.version = String(bot.version);
    if (answer.rotation) bot.item.dataset.rotation = answer.rotation.state;
    draw(bot);
    bot.item.dataset.state = "ready";
    follow(bot);
  }

  // A rotation the worker is moving on: ask for its card again until it stops (Slack and Teams have
  // the worker update the message instead).
  function follow(bot) {
    const rotation = bot.data && bot.data.rotation;
    if (!rotation || !rotation.working || bot.following) return;
    bot.following = true;
    setTimeout(async () => {
      bot.following = false;
      const reply = await call("/console/api/rotations/" + encodeURIComponent(rotation.id), {});
      if (reply.error) {
        fail(bot, reply.error);
      } else if (JSON.stringify(reply.answer) !== JSON.stringify(bot.data)) {
        show(bot, reply.answer);
        setNote(bot, "Updated by secretbot " + new Date().toLocaleTimeString());
      } else {
        follow(bot);
      }
    }, FOLLOW_MS);
  }

  // --- who the console acts as -----------------------------------------------------------------

  function personName(key) {
    const found = people.find((p) => p.key === key);
    return found ? found.name : "You";
  }

  function setPerson(key) {
    person = key;
    for (const button of document.querySelectorAll("#people button")) {
      button.setAttribute("aria-checked", String(button.dataset.person === key));
    }
    for (const note of document.querySelectorAll(".note[data-for]")) note.hidden = note.dataset.for !== key;
  }

  function showPeople(list) {
    people = list;
    if (!people.length) return;
    setPerson(people[0].key);
    if (people.length < 2) return;
    const group = document.getElementById("people");
    for (const p of people) {
      const button = el("button", null, p.role ? p.name + " (" + p.role + ")" : p.name);
      button.type = "button";
      button.setAttribute("role", "radio");
      button.dataset.person = p.key;
      button.setAttribute("aria-checked", String(p.key === person));
      button.addEventListener("click", () => setPerson(p.key));
      group.appendChild(button);
    }
    group.hidden = false;
  }

  // --- the warnings channel --------------------------------------------------------------------

  function place(next) {
    const inChannel = next === "channel";
    for (const button of document.querySelectorAll(".places button")) {
      button.setAttribute("aria-selected", String(button.dataset.place === next));
    }
    transcript.hidden = inChannel;
    composer.hidden = inChannel;
    channel.hidden = !inChannel;
    scanbar.hidden = !inChannel;
  }

  function arrived(message) {
    let bot = posted[message.id];
    const fresh = !bot;
    if (fresh) {
      bot = botMessage(channel);
      posted[message.id] = bot;
    }
    if (message.text) {
      bot.answer.replaceChildren(el("p", "plain", message.text));
      bot.item.dataset.state = "ready";
      bot.item.dataset.cause = "scan_failed";
    } else if (JSON.stringify(bot.data) !== JSON.stringify(message.answer)) {
      if (fresh) answers.push(bot);
      show(bot, message.answer);
      if (!fresh) setNote(bot, "Updated by the scan " + new Date().toLocaleTimeString());
    }
    return fresh;
  }

  async function runScan() {
    scanNow.disabled = true;
    scanStatus.textContent = "Scanning the tenant…";
    const reply = await post("/console/api/scan", {});
    scanNow.disabled = false;
    if (reply.error) {
      scanStatus.textContent = reply.error;
      return;
    }
    const fresh = reply.messages.filter(arrived).length;
    scanStatus.textContent =
      "Scanned at " + new Date().toLocaleTimeString() + ": " +
      (fresh ? fresh + " new message" + (fresh === 1 ? "" : "s") : "nothing new (each threshold is warned once)");
    channel.scrollTop = channel.scrollHeight;
  }

  // --- drawing one answer in the chosen view ----------------------------------------------------

  function draw(bot) {
    const answer = bot.data;
    let node;
    if (view === "json") node = el("pre", "plain", JSON.stringify(answer.slack, null, 2));
    else if (view === "slack") node = window.SlackPreview.render(answer.slack, (verb, id) => press(bot, verb, id));
    else node = teamsCard(bot) || el("pre", "plain", answer.text);
    bot.answer.replaceChildren(node);
  }

  function teamsCard(bot) {
    const AC = window.AdaptiveCards;
    if (!AC || !hostConfig || !window.markdownit) return null;
    const md = window.markdownit({ html: false, linkify: false });
    AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
      // Teams shows <at>Name</at> (a warning's owners) as a mention; the console as bold @Name.
      result.outputHtml = md.render(text.replace(/<at>([^<]*)<\/at>/g, "**@$1**"));
      result.didProcess = true;
    };
    const card = new AC.AdaptiveCard();
    card.hostConfig = hostConfig;
    card.onExecuteAction = (action) => {
      if (action instanceof AC.ExecuteAction) press(bot, action.verb, (action.data && action.data.id) || "");
      else if (action instanceof AC.OpenUrlAction && /^https?:/i.test(action.url)) {
        window.open(action.url, "_blank", "noopener,noreferrer");
      }
    };
    card.parse(bot.data.teams, new AC.SerializationContext(AC.Versions.v1_5));
    const rendered = card.render();
    if (!rendered) return null;
    const frame = el("div", "teams-card");
    frame.appendChild(rendered);
    return frame;
  }

  function setView(next) {
    view = next;
    for (const button of document.querySelectorAll(".views button")) {
      button.setAttribute("aria-checked", String(button.dataset.view === view));
    }
    for (const bot of answers) draw(bot);
  }

  // --- start ----------------------------------------------------------------------------------

  async function start() {
    let about;
    try {
      about = await (await fetch("/console/api/about")).json();
    } catch (error) {
      document.getElementById("about").textContent = "The demo server does not answer.";
      return;
    }
    document.getElementById("about").textContent =
      "Tenant: " + about.tenant + " · clock " + about.clock + " · rotation " + about.rotation;
    showPeople(about.people || []);
    rendererMissing = about.renderer;
    if (rendererMissing || !window.AdaptiveCards) {
      banner.textContent =
        "Teams cards are shown as text: Microsoft's card renderer is not installed. " + (rendererMissing || "");
      banner.hidden = false;
    } else {
      try {
        hostConfig = new window.AdaptiveCards.HostConfig(await (await fetch("/console/vendor/teams-host-config.json")).json());
      } catch (error) {
        hostConfig = null;
      }
    }
    const list = document.getElementById("sample-list");
    if (!about.samples.length) {
      document.getElementById("samples-note").textContent =
        "No samples for this snapshot: paste an error, or an app id from it.";
    }
    for (const sample of about.samples) {
      const button = el("button", null);
      button.type = "button";
      button.dataset.cause = sample.cause;
      button.appendChild(document.createTextNode(sample.title));
      button.appendChild(el("code", null, sample.cause));
      button.addEventListener("click", () => sendPaste(sample.text));
      const item = el("li");
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  document.getElementById("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendPaste(paste.value);
  });
  paste.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendPaste(paste.value);
    }
  });
  for (const button of document.querySelectorAll(".views button")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  for (const button of document.querySelectorAll(".places button")) {
    button.addEventListener("click", () => place(button.dataset.place));
  }
  scanNow.addEventListener("click", runScan);
  start();
})();
