// Validates docs/asyncapi.yaml: the real AsyncAPI parser (every error and
// warning it reports fails the check), then every message example's
// payload and headers against the message's JSON Schemas (ajv), and every
// channel's messages and every operation's reply are resolvable. Run by
// scripts/check-asyncapi.sh with NODE_PATH set to .tools/asyncapi.
'use strict';

const fs = require('fs');
const { Parser, fromFile } = require('@asyncapi/parser');
const Ajv = require('ajv');
const yaml = require('js-yaml');

const file = process.argv[2] || 'docs/asyncapi.yaml';

async function main() {
  const failures = [];
  const { document, diagnostics } = await fromFile(new Parser(), file).parse();
  // Severity: 0 error, 1 warning, 2 information, 3 hint.
  for (const d of diagnostics) {
    const where = (d.path || []).join('.');
    const line = `${file}: ${['error', 'warning', 'info', 'hint'][d.severity]} ${d.code} at ${where}: ${d.message}`;
    if (d.severity <= 1) failures.push(line);
    else console.log(line);
  }
  if (!document) {
    failures.push(`${file}: the parser produced no document`);
    return failures;
  }

  // Examples against their schemas, on the document as written ($refs
  // resolved by ajv against the document itself).
  const raw = yaml.load(fs.readFileSync(file, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  ajv.addSchema(raw, 'asyncapi');
  const messages = raw.components.messages;
  let checked = 0;
  for (const [name, message] of Object.entries(messages)) {
    const examples = message.examples || [];
    if (examples.length === 0) failures.push(`message ${name}: no example`);
    for (const [i, example] of examples.entries()) {
      const label = `message ${name} example ${example.name || i}`;
      for (const part of ['payload', 'headers']) {
        if (!(part in example)) continue;
        if (!message[part]) {
          failures.push(`${label}: has ${part} but the message has no ${part} schema`);
          continue;
        }
        const validate = ajv.compile({ $ref: `asyncapi#/components/messages/${name}/${part}` });
        if (!validate(example[part])) {
          for (const e of validate.errors) {
            failures.push(`${label}: ${part}${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
          }
        }
        checked += 1;
      }
    }
  }

  // Every channel's messages are components, every operation names a
  // channel of this document.
  const channels = raw.channels;
  for (const [name, op] of Object.entries(raw.operations)) {
    const ref = op.channel && op.channel.$ref;
    if (!ref || !channels[ref.replace('#/channels/', '')]) {
      failures.push(`operation ${name}: channel ${ref} is not in the document`);
    }
  }
  console.log(`${file}: AsyncAPI ${document.version()}, ${Object.keys(channels).length} channels, ` +
    `${Object.keys(raw.operations).length} operations, ${Object.keys(messages).length} messages, ` +
    `${checked} example parts valid against their schemas`);
  return failures;
}

main().then(
  (failures) => {
    for (const f of failures) console.error(f);
    process.exit(failures.length ? 1 : 0);
  },
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
