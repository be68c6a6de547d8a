// The support desk: an internal records API and an AI triage agent. The agent's work is traced
// with the OpenTelemetry GenAI conventions (`invoke_agent`, `chat`, `execute_tool`); its tools
// call the records API over HTTP. The planner is deterministic: no model is involved.
import { HOME_ACCOUNT, HOME_REGION, callJson, createRouter, fail, listen } from './lib.mjs';
import { SpanKind, inSpan, nodeHttp } from './telemetry.mjs';

export const AGENT_ID = 'support-triage';
export const AGENT_NAME = 'Support triage agent';
/** Words that make the planner follow instructions found in a ticket (a prompt injection). */
export const INJECTION_MARKER = 'ignore previous instructions';
/** Customers an injected plan reads; the tool-call flood. */
export const INJECTED_LOOKUPS = 40;
/** Payment methods an injected plan reads; the out-of-workflow reads. */
export const INJECTED_CARD_READS = 10;

const resource = (name) => ({
  'service.name': name,
  'service.namespace': 'support',
  'cloud.region': HOME_REGION,
  'cloud.account.id': HOME_ACCOUNT,
  'k8s.cluster.name': 'prod-eu',
});

export const recordsApi = {
  resource: resource('records-api'),
  async start() {
    const notes = new Map();
    const customer = (id) => ({ id, name: `customer ${id}`, tier: Number(id) % 2 ? 'gold' : 'standard' });
    const router = createRouter()
      .route('GET', '/tickets/{id}', ({ params }) => ({ id: params.id, customerId: String((Number(params.id) || 0) % 50), text: 'cannot log in' }))
      .route('POST', '/tickets/{id}/notes', ({ params, body }) => {
        const list = notes.get(params.id) ?? [];
        if (list.length < 100) list.push(String(body?.note ?? '').slice(0, 500));
        notes.set(params.id, list);
        return { id: params.id, notes: list.length };
      })
      .route('GET', '/customers/export', () => ({ customers: Array.from({ length: 20 }, (_, i) => customer(String(i))) }))
      .route('GET', '/customers/{id}', ({ params }) => customer(params.id))
      .route('GET', '/customers/{id}/payment-methods', ({ params }) => ({ id: params.id, cards: [{ last4: '4242' }] }));
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

/**
 * The plan for a ticket, after reading it: look up its customer, add a note. A ticket carrying
 * the injection marker makes the planner read many customers and their payment methods.
 */
export function plan(ticket) {
  const steps = [{ tool: 'lookup_customer', args: { id: ticket.customerId } }];
  if (String(ticket.text ?? '').toLowerCase().includes(INJECTION_MARKER)) {
    for (let i = 0; i < INJECTED_LOOKUPS; i++) steps.push({ tool: 'lookup_customer', args: { id: String(100 + i) } });
    for (let i = 0; i < INJECTED_CARD_READS; i++) steps.push({ tool: 'read_payment_methods', args: { id: String(100 + i) } });
  }
  steps.push({ tool: 'add_note', args: { id: ticket.id, note: 'triaged: password reset link sent' } });
  return steps;
}

/** Time a tool call's argument check takes (span start times have millisecond resolution). */
export const VALIDATION_MS = 5;

/** Checks a tool call's arguments before it runs, as agent frameworks do (a schema check). */
async function validateArguments(step) {
  await new Promise((resolve) => setTimeout(resolve, VALIDATION_MS));
  for (const value of Object.values(step.args)) {
    if (typeof value !== 'string' || value.length > 500) throw new Error(`bad argument for ${step.tool}`);
  }
}

export const supportAgent = {
  resource: resource('support-agent'),
  async start(ctx) {
    const ua = `support-agent/0.9 node/${process.versions.node}`;
    const records = (method, path, body) => callJson(method, `${ctx.peer('records-api')}${path}`, { body, userAgent: ua });
    const tools = {
      get_ticket: ({ id }) => records('GET', `/tickets/${encodeURIComponent(id)}`),
      lookup_customer: ({ id }) => records('GET', `/customers/${encodeURIComponent(id)}`),
      read_payment_methods: ({ id }) => records('GET', `/customers/${encodeURIComponent(id)}/payment-methods`),
      add_note: ({ id, note }) => records('POST', `/tickets/${encodeURIComponent(id)}/notes`, { note }),
    };
    const agentAttrs = { 'gen_ai.agent.id': AGENT_ID, 'gen_ai.agent.name': AGENT_NAME, 'gen_ai.provider.name': 'demo' };
    const chat = (step) =>
      inSpan(
        'chat demo-planner',
        { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'demo-planner', 'gen_ai.provider.name': 'demo' } },
        async (span) => span.setAttribute('gen_ai.usage.output_tokens', 12 + step),
      );
    const execute = (step) =>
      inSpan(
        `execute_tool ${step.tool}`,
        { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': step.tool, ...agentAttrs } },
        async (span) => {
          await validateArguments(step);
          const res = await tools[step.tool](step.args);
          span.setAttribute('http.response.status_code', res.status);
          return res.body ?? {};
        },
      );

    const router = createRouter().route('POST', '/triage', async ({ body }) => {
      const id = String(body?.ticketId ?? '').slice(0, 32);
      if (!id) fail(400, 'ticketId required');
      const invoke = { kind: SpanKind.INTERNAL, attributes: { 'gen_ai.operation.name': 'invoke_agent', ...agentAttrs } };
      return inSpan(`invoke_agent ${AGENT_NAME}`, invoke, async () => {
        await chat(0);
        const ticket = await execute({ tool: 'get_ticket', args: { id } });
        const text = `${ticket.text ?? ''} ${String(body?.text ?? '').slice(0, 500)}`;
        const steps = plan({ id, customerId: String(ticket.customerId ?? '0'), text });
        for (const [i, step] of steps.entries()) {
          await chat(i + 1);
          await execute(step);
        }
        return { ticket: id, steps: steps.length + 1 };
      });
    });
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};
