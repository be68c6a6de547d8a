/** Attribute keys conduct writes on OTLP log records and finding spans. */
export const ATTR = {
  alertId: 'conduct.alert.id',
  event: 'conduct.alert.event',
  status: 'conduct.alert.status',
  count: 'conduct.alert.count',
  receivedAt: 'conduct.alert.received_at',
  identity: 'conduct.identity',
  identityKind: 'conduct.identity.kind',
  detector: 'conduct.detector',
  detectors: 'conduct.detectors',
  findings: 'conduct.findings',
  findingCount: 'conduct.finding.count',
  severity: 'conduct.severity',
  score: 'conduct.score',
  techniques: 'conduct.techniques',
  explanation: 'conduct.explanation',
  traceLink: 'conduct.trace.link',
  deliveryId: 'conduct.delivery.id',
  deliverySeq: 'conduct.delivery.seq',
  serviceName: 'service.name',
  serviceVersion: 'service.version',
} as const;

/** `service.name` of the resource conduct's own telemetry is sent under. */
export const CONDUCT_SERVICE_NAME = 'conduct';
