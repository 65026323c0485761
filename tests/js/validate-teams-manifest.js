#!/usr/bin/env node
// Validate Teams app manifests offline with Microsoft's own validator, @microsoft/app-manifest
// (AppManifestUtils.validateAgainstSchema: ajv against the JSON schema named by the manifest's
// "$schema", loaded from the copies bundled in the package). It needs fs-extra beside it.
//
// Usage: node tests/js/validate-teams-manifest.js MANIFEST.json [MORE.json ...]
// Prints a JSON array with, per file, {"file", "schema", "errors": ["<pointer> <message>. Details: ..."]};
// an empty "errors" list means the manifest is valid.
// Exit 0 when every manifest is valid, 1 when any has errors, 2 when the tools are missing or the
// input is bad (not JSON, no "$schema", or a schema the package does not bundle: this script never
// fetches a schema over the network).
"use strict";

const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..", "..");
const MODULES = path.join(ROOT, "node_modules");
const PACKAGE = path.join(MODULES, "@microsoft", "app-manifest");

function fail(message) {
  process.stderr.write(`validate-teams-manifest: ${message}\n`);
  process.exit(2);
}

for (const dir of [PACKAGE, path.join(MODULES, "fs-extra")]) {
  if (!fs.existsSync(path.join(dir, "package.json"))) fail(`missing ${path.relative(ROOT, dir)} (run 'npm ci' in ${ROOT})`);
}

const { AppManifestUtils } = require(PACKAGE);
const packageVersion = JSON.parse(fs.readFileSync(path.join(PACKAGE, "package.json"), "utf8")).version;

function bundledSchema(schemaUrl) {
  // The package maps https://developer.microsoft.com/[xx-yy/]json-schemas/teams/... to build/json-schemas/...;
  // refuse anything it would have to download instead.
  const suffix = AppManifestUtils.getLocalSchemaSuffix(schemaUrl);
  const file = suffix && path.join(PACKAGE, "build", suffix);
  if (!file || !fs.existsSync(file)) {
    fail(`${schemaUrl} is not bundled in @microsoft/app-manifest ${packageVersion} (it would need a download)`);
  }
  return file;
}

async function check(file) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, "utf8").replace(/^\uFEFF/, ""));
  } catch (error) {
    fail(`${file}: ${error.message}`);
  }
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) fail(`${file}: not a JSON object`);
  if (typeof manifest.$schema !== "string") fail(`${file}: no "$schema" to validate against`);
  const schema = path.relative(PACKAGE, bundledSchema(manifest.$schema));
  const errors = await AppManifestUtils.validateAgainstSchema(manifest);
  return { file, schema, errors };
}

async function main() {
  const files = process.argv.slice(2);
  if (files.length === 0) fail("usage: validate-teams-manifest.js MANIFEST.json [MORE.json ...]");
  const results = [];
  for (const file of files) results.push(await check(file));
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
  process.exit(results.some((result) => result.errors.length > 0) ? 1 : 0);
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
