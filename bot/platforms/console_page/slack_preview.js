// A preview of a Slack Block Kit message, for the demo console: the block types and the mrkdwn
// that secretbot's messages use, drawn with DOM nodes and textContent only, so no text in a message
// can become markup. Slack itself draws the real thing; this is for judging content and layout.
// window.SlackPreview.render(message, onButton) -> HTMLElement; onButton(actionId, value).
(function () {
  "use strict";

  // The shortcodes our messages use; others are shown as typed, as Slack does for unknown ones.
  const EMOJI = {
    ":red_circle:": "\u{1F534}",
    ":large_orange_circle:": "\u{1F7E0}",
    ":large_green_circle:": "\u{1F7E2}",
    ":information_source:": "\u{2139}\u{FE0F}",
    ":warning:": "\u{26A0}\u{FE0F}",
    ":hourglass_flowing_sand:": "\u{23F3}",
  };
  const SAFE_LINK = /^(https?:|mailto:)/i;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function decode(text) {
    // Slack sends &, < and > escaped in message text; nothing else.
    return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function emoji(text) {
    return text.replace(/:[a-z0-9_+-]+:/g, (code) => EMOJI[code] || code);
  }

  // *bold*, _italic_, ~strike~ and `code` inside one run of text (no links in it).
  function inline(parent, text) {
    const pattern = /(`[^`\n]+`|\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~)/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) parent.appendChild(document.createTextNode(decode(text.slice(last, match.index))));
      const token = match[0];
      const inner = decode(token.slice(1, -1));
      const tag = { "`": "code", "*": "b", _: "i", "~": "s" }[token[0]];
      parent.appendChild(el(tag, null, tag === "code" ? inner : emoji(inner)));
      last = match.index + token.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(emoji(decode(text.slice(last)))));
  }

  // <url|label>, <url>, <@U123>, <#C123|name>, <!here>: links and mentions, the rest inline.
  function mrkdwn(parent, text) {
    const pattern = /<([^<>|]+)(?:\|([^<>]*))?>/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      inline(parent, text.slice(last, match.index));
      const target = match[1];
      const label = match[2] !== undefined ? match[2] : target;
      if (/^[@#!]/.test(target)) {
        const name = target[0] === "!" ? "@" + target.slice(1) : target[0] + (match[2] || target.slice(1));
        parent.appendChild(el("span", "mention", decode(name)));
      } else if (SAFE_LINK.test(decode(target))) {
        const link = el("a", null);
        link.href = decode(target);
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        inline(link, label);
        parent.appendChild(link);
      } else {
        inline(parent, match[0]);
      }
      last = match.index + match[0].length;
    }
    inline(parent, text.slice(last));
  }

  function textObject(parent, object) {
    if (!object) return parent;
    if (object.type === "mrkdwn") mrkdwn(parent, object.text || "");
    else parent.appendChild(document.createTextNode(object.emoji ? emoji(object.text || "") : object.text || ""));
    return parent;
  }

  function block(b, onButton) {
    switch (b.type) {
      case "header":
        return textObject(el("div", "slack-block slack-header"), b.text);
      case "section": {
        const node = el("div", "slack-block slack-section");
        if (b.text) textObject(node, b.text);
        if (b.fields) {
          const grid = el("div", "slack-fields");
          for (const field of b.fields) grid.appendChild(textObject(el("div"), field));
          node.appendChild(grid);
        }
        return node;
      }
      case "context": {
        const node = el("div", "slack-block slack-context");
        (b.elements || []).forEach((element, i) => {
          if (i) node.appendChild(document.createTextNode("  "));
          textObject(node, element);
        });
        return node;
      }
      case "actions": {
        const node = el("div", "slack-block slack-actions");
        for (const element of b.elements || []) {
          if (element.type !== "button") continue;
          const button = el("button", null);
          button.type = "button";
          textObject(button, element.text);
          button.addEventListener("click", () => onButton(element.action_id, element.value || ""));
          node.appendChild(button);
        }
        return node;
      }
      case "divider":
        return el("hr");
      default:
        return el("div", "slack-block slack-unknown", "[" + b.type + " block: not previewed]");
    }
  }

  function render(message, onButton) {
    const root = el("div", "slack");
    const blocks = message.blocks || [];
    if (!blocks.length) mrkdwn(root, message.text || "");
    for (const b of blocks) root.appendChild(block(b, onButton));
    return root;
  }

  window.SlackPreview = { render: render };
})();
