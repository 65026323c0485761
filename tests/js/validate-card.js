#!/usr/bin/env node
// Validate Adaptive Cards with Microsoft's own renderer (adaptivecards 3.0.6) under the Teams light
// host config, so Teams' limits (maxActions 6) apply.
//
// Usage: node tests/js/validate-card.js CARDS.json    (or the JSON on stdin)
//   CARDS.json holds a JSON array of cards (each one the attachment content).
// Prints a JSON array with, per card, the list of parse and validation events as
// "[Phase] Event: message" strings; an empty list means Microsoft's renderer is happy.
// Exit 0 when the cards were checked (events or not), 2 when the tools are missing or the input is bad.
"use strict";

const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..", "..");
const MODULES = path.join(ROOT, "node_modules");
// `require("adaptivecards")` is broken on Node (ESM lib/ without extensions, AdaptiveCards#9155);
// the webpack UMD bundle in dist/ loads fine without a DOM.
const RENDERER = path.join(MODULES, "adaptivecards", "dist", "adaptivecards.js");
const HOST_CONFIG = path.join(MODULES, "adaptivecards-designer", "lib", "hostConfigs", "microsoft-teams-light.json");

function fail(message) {
  process.stderr.write(`validate-card: ${message}\n`);
  process.exit(2);
}

for (const file of [RENDERER, HOST_CONFIG]) {
  if (!fs.existsSync(file)) fail(`missing ${path.relative(ROOT, file)} (run 'npm ci' in ${ROOT})`);
}

const AC = require(RENDERER);
const hostConfigJson = JSON.parse(fs.readFileSync(HOST_CONFIG, "utf8"));

function describe(event) {
  const phase = AC.ValidationPhase[event.phase] ?? String(event.phase);
  const name = AC.ValidationEvent[event.event] ?? String(event.event);
  return `[${phase}] ${name}: ${event.message}`;
}

function check(json) {
  const events = [];
  try {
    const card = new AC.AdaptiveCard();
    card.hostConfig = new AC.HostConfig(hostConfigJson);
    const context = new AC.SerializationContext(AC.Versions.v1_5);
    card.parse(json, context);
    for (let i = 0; i < context.eventCount; i++) events.push(describe(context.getEventAt(i)));
    for (const event of card.validateProperties().validationEvents) events.push(describe(event));
  } catch (error) {
    events.push(`[Exception] ${error && error.stack ? error.stack.split("\n")[0] : String(error)}`);
  }
  return events;
}

const source = process.argv[2] ? fs.readFileSync(process.argv[2], "utf8") : fs.readFileSync(0, "utf8");
let cards;
try {
  cards = JSON.parse(source);
} catch (error) {
  fail(`input is not JSON: ${error.message}`);
}
if (!Array.isArray(cards)) fail("input must be a JSON array of cards");
process.stdout.write(JSON.stringify(cards.map(check)) + "\n");
