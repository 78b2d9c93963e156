// The browser client as a package (websocket_gateway/client): it imports as an ES module, its
// package.json names files that exist, and akv.d.ts declares every public method and static of
// AkvGateway, so the declarations cannot silently fall behind the code. Run by ctest under
// Node (skipped, exit 77, when Node is not installed).
import {readFileSync, existsSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import assert from 'node:assert/strict';

const client = join(dirname(fileURLToPath(import.meta.url)), '../../websocket_gateway/client');
const pkg = JSON.parse(readFileSync(join(client, 'package.json'), 'utf8'));
for (const f of [pkg.main, pkg.types, ...pkg.files, ...Object.values(pkg.exports['.'])])
    assert.ok(existsSync(join(client, f)), `package.json names ${f}, which is not there`);

const mod = await import(pathToFileURL(join(client, 'akv.mjs')).href);
const {AkvGateway} = mod;
assert.equal(typeof AkvGateway, 'function');
assert.equal(mod.default, AkvGateway);
assert.equal(globalThis.AkvGateway, AkvGateway);
assert.equal(AkvGateway.compareOffsets('10-1', '9-5') > 0, true);
assert.equal(AkvGateway.sseUrlOf('wss://example.com:8443/ws'), 'https://example.com:8443/connection/sse');

const dts = readFileSync(join(client, 'akv.d.ts'), 'utf8');
const missing = [];
for (const name of Object.getOwnPropertyNames(AkvGateway.prototype))
    if (name !== 'constructor' && !name.startsWith('_') && !new RegExp(`\\b${name}[<(]`).test(dts))
        missing.push(name);
for (const name of Object.getOwnPropertyNames(AkvGateway))
    if (typeof AkvGateway[name] === 'function' && !new RegExp(`static ${name}\\(`).test(dts))
        missing.push('static ' + name);
assert.deepEqual(missing, [], 'akv.d.ts does not declare: ' + missing.join(', '));
// The instance fields the declarations promise.
const gw = new AkvGateway('ws://127.0.0.1:1/ws', {WebSocket: class {}, transports: ['websocket']});
for (const field of ['url', 'state', 'transport', 'clientId', 'subject', 'expires'])
    assert.ok(field in gw, `no field ${field}`);
assert.ok(new RegExp('readonly transport').test(dts));
console.log('client package: ok');
