// OpenInference (@arizeai/openinference-instrumentation-openai) with its
// session helper (setSession from @arizeai/openinference-core) around the
// loop; the agent and tool spans are the user's own, with OpenInference's
// span kinds.
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { trace, context } = require('@opentelemetry/api');
const { OpenAIInstrumentation } = require('@arizeai/openinference-instrumentation-openai');
const { setSession, wrapTracer } = require('@arizeai/openinference-core');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'support-bot' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({
    url: process.env.OTLP_URL + '/v1/traces', headers: { Authorization: 'Bearer capture' },
  }))],
});
provider.register();
const OpenAI = require('openai');
const instrumentation = new OpenAIInstrumentation();
instrumentation.manuallyInstrument(OpenAI);

(async () => {
  const { TURNS, MODEL, BROKEN_MODEL, toolResult } = await import('./common.mjs');
  const client = new OpenAI({ baseURL: process.env.MODEL_URL + '/v1', apiKey: 'sk-fake', maxRetries: 0 });
  const tools = ['get_order', 'search_docs', 'delete_account'].map((name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: { id: { type: 'string' } } } } }));
  // wrapTracer: the user's own spans get the context's session too.
  const tracer = wrapTracer(trace.getTracer('support-bot'));
  await context.with(setSession(context.active(), { sessionId: 'sess-openinference-1' }), () =>
    tracer.startActiveSpan('support_agent', { attributes: { 'openinference.span.kind': 'AGENT' } }, async (root) => {
      const messages = [{ role: 'user', content: 'Where is my order?' }];
      for (let turn = 1; turn <= TURNS; turn++) {
        const res = await client.chat.completions.create({ model: MODEL, messages, tools });
        const msg = res.choices[0].message;
        messages.push(msg);
        for (const call of msg.tool_calls ?? []) {
          await tracer.startActiveSpan(call.function.name, {
            attributes: { 'openinference.span.kind': 'TOOL', 'tool.name': call.function.name, 'input.value': call.function.arguments },
          }, async (span) => {
            messages.push({ role: 'tool', tool_call_id: call.id, content: toolResult(call.function.name, call.function.arguments) });
            span.end();
          });
        }
      }
      try {
        await client.chat.completions.create({ model: BROKEN_MODEL, messages });
      } catch (e) { /* the failed call */ }
      root.end();
    }));
  await provider.shutdown();
})();
