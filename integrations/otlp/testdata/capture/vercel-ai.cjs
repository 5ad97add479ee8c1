// Vercel AI SDK (ai 6) with experimental_telemetry: the session in
// metadata.sessionId; tools are the SDK's own (ai.toolCall spans). The
// SDK's tracer comes from the global provider: the OpenTelemetry SDK with
// its OTLP/HTTP exporter and default batch processor.
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'support-bot' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({
    url: process.env.OTLP_URL + '/v1/traces', headers: { Authorization: 'Bearer capture' },
  }))],
});
provider.register();

(async () => {
  const { TURNS, MODEL, BROKEN_MODEL, toolResult } = await import('./common.mjs');
  const { generateText, tool, stepCountIs } = require('ai');
  const { createOpenAICompatible } = require('@ai-sdk/openai-compatible');
  const { z } = require('zod');
  const fake = createOpenAICompatible({ name: 'openai', baseURL: process.env.MODEL_URL + '/v1', apiKey: 'sk-fake', includeUsage: true });
  const tools = Object.fromEntries(['get_order', 'search_docs', 'delete_account'].map((name) => [name, tool({
    description: name, inputSchema: z.object({ id: z.string() }), execute: async (args) => toolResult(name, args),
  })]));
  const telemetry = { isEnabled: true, functionId: 'support-agent', metadata: { sessionId: 'sess-vercel-1' } };
  await generateText({
    model: fake(MODEL), prompt: 'Where is my order?', tools, stopWhen: stepCountIs(TURNS),
    maxRetries: 0, experimental_telemetry: telemetry,
  });
  try {
    await generateText({ model: fake(BROKEN_MODEL), prompt: 'And my refund?', maxRetries: 0, experimental_telemetry: telemetry });
  } catch (e) { /* the failed call */ }
  await provider.shutdown();
})();
