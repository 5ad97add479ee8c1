// Shared by the capture scripts: a fake OpenAI-compatible model server and an
// OTLP recorder that saves every request body as it arrived.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

// The agent loop every script runs: 10 model turns; turns 1-9 each ask for
// one tool (get_order on odd turns, search_docs on even ones: both in the
// agent's tool_scope; delete_account, not in it, at turn 9); turn 10
// answers. Then one model call that fails.
export const TURNS = 10;
export const toolAt = (turn) => (turn === 9 ? 'delete_account' : turn < 9 ? (turn % 2 ? 'get_order' : 'search_docs') : null);
export const TOOLS = ['get_order', 'search_docs', 'delete_account'];
export const MODEL = 'gpt-4.1';
export const BROKEN_MODEL = 'gpt-4.1-broken';
// Each turn answers usage {prompt: 100*turn, completion: 20}: the session
// totals 5,500 input and 200 output tokens.
export const usage = (turn) => ({ prompt_tokens: 100 * turn, completion_tokens: 20, total_tokens: 100 * turn + 20 });

// Slow enough that the batch processor's 5 s timer exports the first
// children before the agent's root span ends, as in production.
const DELAY_MS = Number(process.env.FAKE_MODEL_DELAY_MS ?? 600);

// fakeModel answers POST */chat/completions. The turn is the number of
// assistant messages already in the conversation plus one.
export function fakeModel() {
  return listen(async (req, res, body) => {
    await new Promise((r) => setTimeout(r, DELAY_MS));
    let msg = {};
    try { msg = JSON.parse(body.toString('utf8')); } catch {}
    if (msg.model === BROKEN_MODEL) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'The model `gpt-4.1-broken` does not exist', type: 'invalid_request_error', code: 'model_not_found' } }));
      return;
    }
    const turn = (msg.messages ?? []).filter((m) => m.role === 'assistant').length + 1;
    const tool = toolAt(turn);
    const message = tool
      ? { role: 'assistant', content: null, tool_calls: [{ id: `call_${turn}`, type: 'function', function: { name: tool, arguments: JSON.stringify({ id: `A-${turn}` }) } }] }
      : { role: 'assistant', content: turn >= TURNS ? 'Done: your order is on its way.' : `Thinking (turn ${turn}).` };
    const out = {
      id: `chatcmpl-${turn}`, object: 'chat.completion', created: 1765000000 + turn, model: MODEL,
      choices: [{ index: 0, message, finish_reason: tool ? 'tool_calls' : 'stop' }],
      usage: usage(turn),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  });
}

// recorder saves each OTLP request under dir as NN.<json|pb>[.gz] with an
// index.json of content types, encodings and arrival times, and answers an
// empty ExportTraceServiceResponse.
export function recorder(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const index = [];
  const start = Date.now();
  const srv = listen(async (req, res, body) => {
    const ct = (req.headers['content-type'] ?? '').split(';')[0].trim();
    const enc = (req.headers['content-encoding'] ?? '').trim();
    const n = String(index.length + 1).padStart(2, '0');
    const file = `${n}.${ct === 'application/json' ? 'json' : 'pb'}${enc === 'gzip' ? '.gz' : ''}`;
    fs.writeFileSync(path.join(dir, file), body);
    index.push({ file, path: req.url, content_type: ct, content_encoding: enc, after_ms: Date.now() - start });
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index, null, 1) + '\n');
    if (ct === 'application/json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else {
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end();
    }
  });
  srv.index = index;
  return srv;
}

function listen(handle) {
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)).catch((e) => { res.writeHead(500); res.end(String(e)); }));
  });
  srv.ready = new Promise((r) => srv.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${srv.address().port}`)));
  return srv;
}

// toolResult is what every tool returns.
export const toolResult = (name, args) => JSON.stringify({ tool: name, ok: true, args });

export const out = (name) => path.join(path.dirname(new URL(import.meta.url).pathname), 'requests', name);
