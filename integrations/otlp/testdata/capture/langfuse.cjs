// Langfuse's OpenTelemetry SDK (@langfuse/tracing + @langfuse/otel): the
// LangfuseSpanProcessor (batched, its default) exports to
// <baseUrl>/api/public/otel/v1/traces, here the recorder. Generations carry
// the model and usage; the session comes from propagateAttributes.
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { LangfuseSpanProcessor } = require('@langfuse/otel');
const { startActiveObservation, startObservation, propagateAttributes } = require('@langfuse/tracing');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'support-bot' }),
  spanProcessors: [new LangfuseSpanProcessor({ publicKey: 'pk-lf-capture', secretKey: 'sk-lf-capture', baseUrl: process.env.OTLP_URL })],
});
provider.register();

(async () => {
  const { TURNS, MODEL, BROKEN_MODEL, toolResult } = await import('./common.mjs');
  const chat = async (model, messages) => {
    const r = await fetch(process.env.MODEL_URL + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error?.message ?? `HTTP ${r.status}`);
    return body;
  };
  await startActiveObservation('support_agent', async () => {
    await propagateAttributes({ sessionId: 'sess-langfuse-1' }, async () => {
      const messages = [{ role: 'user', content: 'Where is my order?' }];
      for (let turn = 1; turn <= TURNS; turn++) {
        const gen = startObservation('chat', { model: MODEL }, { asType: 'generation' });
        const res = await chat(MODEL, messages);
        const msg = res.choices[0].message;
        gen.update({ usageDetails: { input: res.usage.prompt_tokens, output: res.usage.completion_tokens } }).end();
        messages.push(msg);
        for (const call of msg.tool_calls ?? []) {
          const t = startObservation(call.function.name, { input: call.function.arguments }, { asType: 'tool' });
          messages.push({ role: 'tool', tool_call_id: call.id, content: toolResult(call.function.name, call.function.arguments) });
          t.end();
        }
      }
      const gen = startObservation('chat', { model: BROKEN_MODEL }, { asType: 'generation' });
      try {
        await chat(BROKEN_MODEL, messages);
      } catch (e) {
        gen.update({ level: 'ERROR', statusMessage: e.message });
      }
      gen.end();
    });
  }, { asType: 'agent' });
  await provider.shutdown();
})();
