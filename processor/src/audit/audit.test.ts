import { describe, expect, it } from 'vitest';
import { SpanKind, StatusCode } from '@conduct/proto';
import { deriveTrace } from '../calls/derive.js';
import { objectAttrs } from '../keys.js';
import { createIdentityResolver, DEFAULT_IDENTITY_RULES } from '../identity/index.js';
import { auditRequest, auditTraceId, cloudTrailRecordsOf, clientAddressOf, k8sEventsOf, readCloudTrailRecord, readK8sAuditEvent, type AuditCall } from './index.js';

const t = (iso: string) => Date.parse(iso);

const assumedRole = {
  eventVersion: '1.08',
  userIdentity: {
    type: 'AssumedRole',
    principalId: 'AROAEXAMPLE:i-0abc',
    arn: 'arn:aws:sts::111122223333:assumed-role/web-role/i-0abc',
    accountId: '111122223333',
    sessionContext: { sessionIssuer: { type: 'Role', arn: 'arn:aws:iam::111122223333:role/web-role' } },
  },
  eventTime: '2026-11-27T08:00:05Z',
  eventSource: 's3.amazonaws.com',
  eventName: 'GetObject',
  awsRegion: 'eu-west-1',
  sourceIPAddress: '198.51.100.7',
  userAgent: '[aws-cli/2.15.0 Python/3.11 Darwin/23.1.0]',
  requestParameters: { bucketName: 'payroll', key: 'x.csv' },
  errorCode: 'AccessDenied',
  eventID: '6f0b0a8e-0000-4000-8000-000000000001',
  recipientAccountId: '444455556666',
};

const k8sEvent = (over: Record<string, unknown> = {}) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Metadata',
  auditID: 'a1b2c3d4-0000-4000-8000-000000000001',
  stage: 'ResponseComplete',
  requestURI: '/api/v1/namespaces/payments/secrets',
  verb: 'list',
  user: { username: 'system:serviceaccount:monitoring:scraper', groups: ['system:serviceaccounts'] },
  sourceIPs: ['10.4.2.17'],
  userAgent: 'scraper/1.2 (linux/amd64)',
  objectRef: { resource: 'secrets', namespace: 'payments', apiVersion: 'v1' },
  responseStatus: { metadata: {}, code: 200 },
  requestReceivedTimestamp: '2026-11-27T08:00:01.100000Z',
  stageTimestamp: '2026-11-27T08:00:01.130000Z',
  ...over,
});

describe('CloudTrail records', () => {
  it('read as a call at the AWS service by the assumed-role session, with account, region, source, error and eventID', () => {
    const read = readCloudTrailRecord(assumedRole);
    expect(read).toEqual({
      ok: true,
      call: {
        principal: 'arn:aws:sts::111122223333:assumed-role/web-role/i-0abc',
        service: 's3.amazonaws.com',
        system: 'aws-api',
        rpcService: 's3.amazonaws.com',
        method: 'GetObject',
        target: 'payroll',
        bucket: true,
        account: '444455556666',
        callerAccount: '111122223333',
        region: 'eu-west-1',
        clientAddress: '198.51.100.7',
        userAgent: '[aws-cli/2.15.0 Python/3.11 Darwin/23.1.0]',
        errorCode: 'AccessDenied',
        startMs: t('2026-11-27T08:00:05Z'),
        endMs: t('2026-11-27T08:00:05Z'),
        recordId: '6f0b0a8e-0000-4000-8000-000000000001',
      },
    });
  });

  it('names AWS services and bare accounts as such, skips records without a principal, and refuses records without time or id', () => {
    const service = readCloudTrailRecord({ ...assumedRole, userIdentity: { type: 'AWSService', invokedBy: 'cloudtrail.amazonaws.com' }, sourceIPAddress: 'cloudtrail.amazonaws.com' });
    expect(service.ok && service.call.principal).toBe('aws-service:cloudtrail.amazonaws.com');
    expect(service.ok && service.call.clientAddress).toBeUndefined();
    const account = readCloudTrailRecord({ ...assumedRole, userIdentity: { type: 'AWSAccount', accountId: '999988887777' } });
    expect(account.ok && account.call.principal).toBe('aws-account:999988887777');
    expect(readCloudTrailRecord({ ...assumedRole, userIdentity: {} })).toMatchObject({ ok: false, skipped: true });
    expect(readCloudTrailRecord({ ...assumedRole, eventTime: 'yesterday' })).toMatchObject({ ok: false, skipped: false });
    expect(readCloudTrailRecord({ ...assumedRole, eventID: undefined, requestID: undefined })).toMatchObject({ ok: false, skipped: false });
    expect(readCloudTrailRecord('nope')).toMatchObject({ ok: false, skipped: false });
    const otrf = readCloudTrailRecord({ ...assumedRole, eventTime: undefined, '@timestamp': '2020-09-14T01:19:40.000Z' });
    expect(otrf.ok && otrf.call.startMs).toBe(t('2020-09-14T01:19:40Z'));
  });

  it('reads documents as AWS writes them, arrays and single records; addresses anonymised with leading zeros', () => {
    expect(cloudTrailRecordsOf({ Records: [1, 2] })).toEqual([1, 2]);
    expect(cloudTrailRecordsOf([1])).toEqual([1]);
    expect(cloudTrailRecordsOf(assumedRole)).toEqual([assumedRole]);
    expect(cloudTrailRecordsOf({ resourceSpans: [] })).toBeUndefined();
    expect(clientAddressOf('08.1.250.216')).toBe('8.1.250.216');
    expect(clientAddressOf('2001:db8::1')).toBe('2001:db8::1');
    expect(clientAddressOf('AWS Internal')).toBeUndefined();
    expect(clientAddressOf('300.1.1.1')).toBeUndefined();
  });
});

describe('Kubernetes audit events', () => {
  it('one call per ResponseComplete event: user, verb and resource, namespace, source, status, auditID', () => {
    expect(readK8sAuditEvent(k8sEvent())).toEqual({
      ok: true,
      call: {
        principal: 'system:serviceaccount:monitoring:scraper',
        service: 'kube-apiserver',
        system: 'kubernetes',
        method: 'list secrets',
        target: 'payments',
        clientAddress: '10.4.2.17',
        userAgent: 'scraper/1.2 (linux/amd64)',
        httpStatus: 200,
        startMs: t('2026-11-27T08:00:01.100Z'),
        endMs: t('2026-11-27T08:00:01.130Z'),
        recordId: 'a1b2c3d4-0000-4000-8000-000000000001',
      },
    });
    const exec = readK8sAuditEvent(k8sEvent({ verb: 'create', objectRef: { resource: 'pods', subresource: 'exec', namespace: 'payments', name: 'api-0' }, responseStatus: { code: 403, reason: 'Forbidden' } }));
    expect(exec.ok && [exec.call.method, exec.call.target, exec.call.httpStatus, exec.call.errorCode]).toEqual(['create pods/exec', 'payments/api-0', 403, 'Forbidden']);
    const node = readK8sAuditEvent(k8sEvent({ verb: 'get', objectRef: { resource: 'nodes', name: 'node-1' } }));
    expect(node.ok && node.call.target).toBe('node-1');
    const healthz = readK8sAuditEvent(k8sEvent({ verb: 'get', objectRef: undefined, requestURI: '/healthz?verbose=1' }));
    expect(healthz.ok && healthz.call.method).toBe('get /healthz');
    const impersonating = readK8sAuditEvent(k8sEvent({ user: { username: 'alice@example.com' }, impersonatedUser: { username: 'system:serviceaccount:ci:deployer' } }));
    expect(impersonating.ok && [impersonating.call.principal, impersonating.call.method]).toEqual(['alice@example.com', 'list secrets as system:serviceaccount:ci:deployer']);
  });

  it('skips other stages; refuses events without user, verb, auditID or time', () => {
    expect(readK8sAuditEvent(k8sEvent({ stage: 'RequestReceived' }))).toMatchObject({ ok: false, skipped: true });
    expect(readK8sAuditEvent(k8sEvent({ user: {} }))).toMatchObject({ ok: false, skipped: false });
    expect(readK8sAuditEvent(k8sEvent({ verb: 7 }))).toMatchObject({ ok: false, skipped: false });
    expect(readK8sAuditEvent(k8sEvent({ auditID: undefined }))).toMatchObject({ ok: false, skipped: false });
    expect(readK8sAuditEvent(k8sEvent({ requestReceivedTimestamp: 'x', stageTimestamp: undefined }))).toMatchObject({ ok: false, skipped: false });
  });

  it('EventList bodies: kind and version checked, items listed', () => {
    expect(k8sEventsOf({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [1] })).toEqual({ ok: true, events: [1] });
    expect(k8sEventsOf({ kind: 'EventList', items: null })).toEqual({ ok: true, events: [] });
    expect(k8sEventsOf({ kind: 'PodList', items: [] }).ok).toBe(false);
    expect(k8sEventsOf({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1beta1', items: [] }).ok).toBe(false);
    expect(k8sEventsOf({ kind: 'EventList', items: {} }).ok).toBe(false);
    expect(k8sEventsOf([]).ok).toBe(false);
  });
});

describe('audited calls as spans', () => {
  const calls = (): AuditCall[] => {
    const a = readCloudTrailRecord(assumedRole);
    const b = readCloudTrailRecord({ ...assumedRole, eventTime: '2026-11-27T08:00:40Z', eventName: 'ListBuckets', requestParameters: null, errorCode: undefined, eventID: 'e2' });
    const c = readCloudTrailRecord({ ...assumedRole, eventTime: '2026-11-27T08:01:10Z', eventID: 'e3' });
    return [a, b, c].map((r) => (r.ok ? r.call : expect.unreachable()));
  };

  it('one principal in one minute is one trace; the next minute another', () => {
    const [a, b, c] = calls();
    expect(auditTraceId(a!.principal, a!.startMs)).toBe(auditTraceId(b!.principal, b!.startMs));
    expect(auditTraceId(a!.principal, a!.startMs)).not.toBe(auditTraceId(c!.principal, c!.startMs));
    expect(auditTraceId('other', a!.startMs)).not.toBe(auditTraceId(a!.principal, a!.startMs));
    expect(auditTraceId(a!.principal, a!.startMs)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('become server-side calls with the principal, peer, operation, target, accounts, region, source, error and record id', () => {
    const request = auditRequest(calls().slice(0, 2));
    expect(request.spanCount).toBe(2);
    const rs = request.resourceSpans[0]!;
    expect(rs.resource['service.name']).toBe('s3.amazonaws.com');
    expect(rs.spans[0]).toMatchObject({ kind: SpanKind.SERVER, parentSpanId: '', statusCode: StatusCode.ERROR });
    const resource = objectAttrs(rs.resource);
    const spans = rs.spans.map((span) => ({ span: { ...span, attributes: objectAttrs(span.attributes) }, resource }));
    const { chains } = deriveTrace(spans, createIdentityResolver(DEFAULT_IDENTITY_RULES));
    expect(chains).toHaveLength(1);
    const [get, list] = chains[0]!.calls;
    expect(chains[0]!.identity).toBe('arn:aws:sts::111122223333:assumed-role/web-role/i-0abc');
    expect(get).toMatchObject({
      identityKind: 'principal',
      service: 'client',
      peer: 's3.amazonaws.com',
      operation: 's3.amazonaws.com/GetObject',
      protocol: 'rpc',
      target: 'payroll',
      account: '444455556666',
      status: 'error',
      errorCode: 'AccessDenied',
      auditId: '6f0b0a8e-0000-4000-8000-000000000001',
      source: { region: 'eu-west-1', account: '111122223333', clientAddress: '198.51.100.7', network: '198.51.100.0/24', publicAddress: true, userAgent: '[aws-cli/2.15.0 Python/3.11 Darwin/23.1.0]' },
    });
    expect(list).toMatchObject({ operation: 's3.amazonaws.com/ListBuckets', auditId: 'e2', status: 'unset' });
    expect(list!.errorCode).toBeUndefined();
  });
});
