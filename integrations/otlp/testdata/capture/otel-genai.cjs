// OpenTelemetry's own @opentelemetry/instrumentation-openai. The
// instrumentation has no option for a conversation ID, so the agent sets
// gen_ai.conversation.id on its root span only, as users naturally do; the
// tool spans are the user's own, per the GenAI conventions.
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai');
const { trace, context, SpanStatusCode } = require('@opentelemetry/api');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'support-bot' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({
    url: process.env.OTLP_URL + '/v1/traces', headers: { Authorization: 'Bearer capture' },
  }))],
});
provider.register();
registerInstrumentations({ instrumentations: [new OpenAIInstrumentation()] });

(async () => {
  const { TURNS, MODEL, BROKEN_MODEL, toolResult } = await import('./common.mjs');
  const OpenAI = require('openai');
  const client = new OpenAI({ baseURL: process.env.MODEL_URL + '/v1', apiKey: 'sk-fake', maxRetries: 0 });
  const tracer = trace.getTracer('support-bot');
  await tracer.startActiveSpan('invoke_agent support-bot', {
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'support-bot', 'gen_ai.conversation.id': 'sess-otel-1' },
  }, async (root) => {
    const messages = [{ role: 'user', content: 'Where is my order?' }];
    for (let turn = 1; turn <= TURNS; turn++) {
      const res = await client.chat.completions.create({ model: MODEL, messages, tools: [] .concat(...['get_order', 'search_docs', 'delete_account'].map((name) => [{ type: 'function', function: { name, parameters: { type: 'object', properties: { id: { type: 'string' } } } } }])) });
      const msg = res.choices[0].message;
      messages.push(msg);
      for (const call of msg.tool_calls ?? []) {
        await tracer.startActiveSpan(`execute_tool ${call.function.name}`, {
          attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': call.function.name, 'gen_ai.tool.call.id': call.id },
        }, async (span) => {
          messages.push({ role: 'tool', tool_call_id: call.id, content: toolResult(call.function.name, call.function.arguments) });
          span.end();
        });
      }
    }
    try {
      await client.chat.completions.create({ model: BROKEN_MODEL, messages });
    } catch (e) { /* the failed call: its span carries the error */ }
    root.end();
  });
  await provider.shutdown();
})();
