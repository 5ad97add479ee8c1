// Reads reins' containment flag with the stock OpenFeature server SDK and
// its OFREP provider, as an agent written in JavaScript would.
//
// The Go test (cmd/reins/e2e_ofrep_node_test.go) starts it with REINS_URL and
// REINS_FLAG_TOKEN, then writes one JSON line per read on stdin:
//   {"agent":"support-bot","session":"s-1","want":"halted","ms":1000}
// and gets one line back, after the SDK returned `want` or the time ran out:
//   {"value":"halted","variant":"halted","errorCode":null,"metadata":{…},"ms":37}
// The default the agent gives the SDK is "stop": anything that goes wrong
// (an unknown agent, reins unreachable) reads as stop.
import { createInterface } from 'node:readline';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const provider = new OFREPProvider({
  baseUrl: process.env.REINS_URL,
  headers: [['Authorization', `Bearer ${process.env.REINS_FLAG_TOKEN}`]],
});
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function read({ agent, session, want, ms }) {
  const start = Date.now();
  const context = session ? { targetingKey: session } : {};
  for (;;) {
    const d = await client.getStringDetails(agent, 'stop', context);
    const took = Date.now() - start;
    if (d.value === want || took > ms) {
      return { value: d.value, variant: d.variant ?? null, errorCode: d.errorCode ?? null,
        metadata: d.flagMetadata ?? {}, ms: took };
    }
    await sleep(20);
  }
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  process.stdout.write(JSON.stringify(await read(JSON.parse(line))) + '\n');
}
await OpenFeature.close();
