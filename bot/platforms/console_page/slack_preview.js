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

  const STYLE = { "*": "b", _: "i", "~": "s" };
  const WORD = /[\p{L}\p{N}]/u;

  // A *, _ or ~ opens a style only at the start of a word and before a non-space, as in Slack, so
  // snake_case and 2*3*4 stay as typed.
  function opensAt(text, i) {
    return (i === 0 || !WORD.test(text[i - 1])) && i + 1 < text.length && !/\s/.test(text[i + 1]);
  }

  // Where the style opened at `i` closes: the same mark after a non-space, at the end of a word, on
  // the same line. Links are skipped whole, so a mark inside a URL closes nothing. -1 when unclosed.
  function closeOf(text, i) {
    const mark = text[i];
    for (let j = i + 1; j < text.length; j++) {
      const ch = text[j];
      if (ch === "\n") return -1;
      if (ch === "<") {
        const end = text.indexOf(">", j);
        if (end > j) j = end;
        continue;
      }
      if (ch === mark && j > i + 1 && !/\s/.test(text[j - 1]) && (j + 1 === text.length || !WORD.test(text[j + 1]))) {
        return j;
      }
    }
    return -1;
  }

  // <url|label>, <url>, <@U123>, <#C123|name>, <!here>: a link or a mention, never markup.
  function link(parent, inside) {
    const bar = inside.indexOf("|");
    const target = bar < 0 ? inside : inside.slice(0, bar);
    const label = bar < 0 ? target : inside.slice(bar + 1);
    if (/^[@#!]/.test(target)) {
      const name = target[0] === "!" ? "@" + target.slice(1) : target[0] + (bar < 0 ? target.slice(1) : label);
      parent.appendChild(el("span", "mention", decode(name)));
    } else if (SAFE_LINK.test(decode(target))) {
      const node = el("a", null);
      node.href = decode(target);
      node.target = "_blank";
      node.rel = "noopener noreferrer";
      mrkdwn(node, label);
      parent.appendChild(node);
    } else {
      parent.appendChild(document.createTextNode(decode("<" + inside + ">")));
    }
  }

  // Slack's mrkdwn: ```blocks```, `code`, links, and *bold*, _italic_, ~strike~ around any of them
  // (our lookup links are bold: *<url|AADSTS7000215>*). Entities are decoded into text nodes only.
  function mrkdwn(parent, text) {
    let plain = "";
    const flush = () => {
      if (plain) parent.appendChild(document.createTextNode(emoji(decode(plain))));
      plain = "";
    };
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      let end = -1;
      if (text.startsWith("```", i) && (end = text.indexOf("```", i + 3)) > i + 3) {
        flush();
        parent.appendChild(el("pre", "slack-pre", decode(text.slice(i + 3, end))));
        i = end + 3;
      } else if (ch === "`" && (end = text.indexOf("`", i + 1)) > i + 1 && !text.slice(i, end).includes("\n")) {
        flush();
        parent.appendChild(el("code", null, decode(text.slice(i + 1, end))));
        i = end + 1;
      } else if (ch === "<" && (end = text.indexOf(">", i + 1)) > i + 1 && !text.slice(i + 1, end).includes("<")) {
        flush();
        link(parent, text.slice(i + 1, end));
        i = end + 1;
      } else if (STYLE[ch] && opensAt(text, i) && (end = closeOf(text, i)) > 0) {
        flush();
        const node = el(STYLE[ch], null);
        mrkdwn(node, text.slice(i + 1, end));
        parent.appendChild(node);
        i = end + 1;
      } else {
        plain += ch;
        i += 1;
      }
    }
    flush();
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
