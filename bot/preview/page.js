// Renders the card embedded in this page with Microsoft's Adaptive Cards renderer, the way Teams
// would, and reports what a reviewer would otherwise have to spot by eye.
// Reads #card-json and #host-config; renders into #card; writes one problem per line into #status,
// sets document.title to RENDERED (the renderer accepted the card) or INVALID (it reported parse or
// validation events, or rendering failed), and leaves the result in window.secretbotPreview.
// Layout problems (overflow, cut-off text) are reported but do not make a card INVALID.
(function () {
  "use strict";
  const host = document.getElementById("card");
  const events = [];
  const layout = [];
  let card = null;
  let md = null;

  function readJson(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  function describeEvent(e) {
    const AC = window.AdaptiveCards;
    return "[" + AC.ValidationPhase[e.phase] + "] " + AC.ValidationEvent[e.event] + ": " + e.message;
  }

  function processMarkdown(text, result) {
    // Teams shows <at>Name</at> as a mention; a preview shows it as bold @Name.
    const source = text.replace(/<at>([^<]*)<\/at>/g, "**@$1**");
    result.outputHtml = md.render(source);
    result.didProcess = true;
  }

  function render() {
    const AC = window.AdaptiveCards;
    if (!AC || !window.markdownit) {
      events.push("[Render] adaptivecards.min.js or markdown-it.min.js did not load");
      return;
    }
    md = window.markdownit({ html: false, linkify: false });
    AC.AdaptiveCard.onProcessMarkdown = processMarkdown;
    card = new AC.AdaptiveCard();
    card.hostConfig = new AC.HostConfig(readJson("host-config"));
    const context = new AC.SerializationContext(AC.Versions.v1_5);
    card.parse(readJson("card-json"), context);
    for (let i = 0; i < context.eventCount; i++) events.push(describeEvent(context.getEventAt(i)));
    for (const e of card.validateProperties().validationEvents) events.push(describeEvent(e));
    const element = card.render();
    if (!element) {
      events.push("[Render] the renderer produced nothing");
      return;
    }
    host.appendChild(element);
  }

  // What a problem line says about an element: where it sits in the card (types from the body down,
  // e.g. "Table > TableRow > TableCell > RichTextBlock") and the start of its text.
  function label(el) {
    const types = [];
    let owner = card && card.findDOMNodeOwner ? card.findDOMNodeOwner(el) : null;
    for (; owner && owner.parent; owner = owner.parent) types.unshift(owner.getJsonTypeName());
    const where = types.length ? types.join(" > ") : el.tagName.toLowerCase();
    const text = (el.textContent || "").replace(/\s+/g, " ").trim();
    const shown = text.length > 60 ? text.slice(0, 57) + "..." : text;
    return shown ? where + ' "' + shown + '"' : where;
  }

  function isShown(el, rect) {
    if (rect.width === 0 && rect.height === 0) return false;
    return getComputedStyle(el).visibility !== "hidden";
  }

  // Elements sticking out of the card on either side. Only the outermost ones are reported (their
  // parent fits): that is where the width comes from; whatever they contain sticks out with them.
  function checkOverflow() {
    const box = host.getBoundingClientRect();
    const left = box.left + host.clientLeft;
    const right = left + host.clientWidth;
    const out = new Map();
    for (const el of host.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      // Inline text runs are left to checkText, which says how much room the text needs.
      if (!isShown(el, r) || getComputedStyle(el).display === "inline") continue;
      const past = Math.max(r.right - right, left - r.left);
      if (past > 0.5) out.set(el, past);
    }
    for (const [el, past] of out) {
      if (out.has(el.parentElement)) continue;
      layout.push("overflow: " + label(el) + " sticks out of the card by " + Math.ceil(past) + " px");
    }
  }

  // Text that does not fit its box: cut off (ellipsis, maxLines, clipped) or spilling over its
  // neighbours. Checked on the nearest block around each piece of text and on every ancestor that
  // clips (maxLines clamps the TextBlock around the paragraph, not the paragraph itself).
  function checkText() {
    const seen = new Set();
    const walker = document.createTreeWalker(host, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      let box = node.parentElement;
      while (box !== host && getComputedStyle(box).display.startsWith("inline")) box = box.parentElement;
      for (let el = box; el && el !== host && !seen.has(el); el = el.parentElement) {
        seen.add(el);
        const problem = textProblem(el, el === box);
        if (problem) layout.push(problem);
      }
    }
  }

  function textProblem(el, holdsText) {
    if (!isShown(el, el.getBoundingClientRect())) return null;
    const style = getComputedStyle(el);
    const clipsX = style.overflowX !== "visible";
    const clipsY = style.overflowY !== "visible";
    if ((holdsText || clipsX) && el.scrollWidth - el.clientWidth > 1) {
      const how = clipsX ? "truncated" : "spills out of its box";
      return "text " + how + ": " + label(el) + " needs " + el.scrollWidth + " px, has " + el.clientWidth;
    }
    if (clipsY && el.scrollHeight - el.clientHeight > 2) {
      return "text truncated: " + label(el) + " needs " + el.scrollHeight + " px of height, has " + el.clientHeight;
    }
    return null;
  }

  function imagesSettled() {
    const pending = Array.from(host.querySelectorAll("img"))
      .filter((img) => !img.complete)
      .map((img) => new Promise((done) => { img.onload = img.onerror = done; }));
    const deadline = new Promise((done) => setTimeout(done, 3000));
    return Promise.race([Promise.all(pending), deadline]);
  }

  function finish() {
    const status = events.length ? "INVALID" : "RENDERED";
    const lines = events.concat(layout);
    document.getElementById("status").textContent = status + "\n" + (lines.length ? lines.join("\n") : "no problems");
    window.secretbotPreview = { status: status, events: events, layout: layout };
    document.title = status;
  }

  try {
    render();
  } catch (error) {
    events.push("[Render] " + (error && error.message ? error.message : String(error)));
  }
  Promise.all([document.fonts.ready, imagesSettled()])
    .then(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))))
    .then(() => {
      try {
        if (card) {
          checkOverflow();
          checkText();
        }
      } catch (error) {
        events.push("[Layout] check failed: " + (error && error.message ? error.message : String(error)));
      }
      finish();
    });
})();
