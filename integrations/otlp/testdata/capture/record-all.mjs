// Re-records every capture: `npm ci && node record-all.mjs [name...]`.
// Each library runs in its own process (instrumentations patch modules
// globally) against one fake model server; its OTLP requests land in
// requests/<name>/.
import { spawn } from 'node:child_process';
import { fakeModel, recorder, out } from './common.mjs';

const scripts = { 'otel-genai': 'otel-genai.cjs', openllmetry: 'openllmetry.cjs', 'vercel-ai': 'vercel-ai.cjs',
  openinference: 'openinference.cjs', langfuse: 'langfuse.cjs' };
const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(scripts);
const model = fakeModel();
const modelURL = await model.ready;
for (const name of names) {
  const rec = recorder(out(name));
  const otlpURL = await rec.ready;
  const t0 = Date.now();
  const code = await new Promise((resolve) => {
    const p = spawn(process.execPath, [scripts[name]], { stdio: 'inherit', cwd: new URL('.', import.meta.url).pathname,
      env: { ...process.env, MODEL_URL: modelURL, OTLP_URL: otlpURL } });
    p.on('exit', resolve);
  });
  await new Promise((r) => setTimeout(r, 300));
  rec.close();
  console.log(`${name}: exit ${code}, ${rec.index.length} requests in ${Date.now() - t0} ms`);
}
model.close();
