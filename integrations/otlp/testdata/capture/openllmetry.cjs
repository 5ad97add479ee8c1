// OpenLLMetry (@traceloop/node-server-sdk): its own initialize() with its
// default exporter (OTLP/HTTP protobuf) and batch processor, pointed at the
// recorder through TRACELOOP_BASE_URL; the session through
// withAssociationProperties, tools through withTool.
const traceloop = require('@traceloop/node-server-sdk');
traceloop.initialize({
  appName: 'support-bot',
  baseUrl: process.env.OTLP_URL,
  apiKey: 'capture',
  traceContent: false,
  silenceInitializationMessage: true,
});

// Required after initialize: the SDK patches it on load.
const OpenAI = require('openai');

(async () => {
  const { TURNS, MODEL, BROKEN_MODEL, toolResult } = await import('./common.mjs');
  const client = new OpenAI({ baseURL: process.env.MODEL_URL + '/v1', apiKey: 'sk-fake', maxRetries: 0 });
  const tools = ['get_order', 'search_docs', 'delete_account'].map((name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: { id: { type: 'string' } } } } }));
  await traceloop.withAssociationProperties({ session_id: 'sess-openllmetry-1' }, () =>
    traceloop.withWorkflow({ name: 'support_agent' }, async () => {
      const messages = [{ role: 'user', content: 'Where is my order?' }];
      for (let turn = 1; turn <= TURNS; turn++) {
        const res = await client.chat.completions.create({ model: MODEL, messages, tools });
        const msg = res.choices[0].message;
        messages.push(msg);
        for (const call of msg.tool_calls ?? []) {
          const out = await traceloop.withTool({ name: call.function.name }, async () => toolResult(call.function.name, call.function.arguments));
          messages.push({ role: 'tool', tool_call_id: call.id, content: out });
        }
      }
      try {
        await client.chat.completions.create({ model: BROKEN_MODEL, messages });
      } catch (e) { /* the failed call */ }
    }));
  await traceloop.forceFlush();
  process.exit(0);
})();
