/**
 * CloudTrail records as OTLP/JSON trace requests (the data sets are described in test/data/README.md): each
 * record is one server span at the AWS service, with the caller as `enduser.id`, so conduct sees
 * a server-side-only call by that principal from `client.address` with `user_agent.original`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface CloudTrailRecord {
  eventTime?: string;
  '@timestamp'?: string;
  eventSource?: string;
  eventName?: string;
  awsRegion?: string;
  sourceIPAddress?: string;
  userAgent?: string;
  recipientAccountId?: string;
  errorCode?: string;
  eventID?: string;
  requestID?: string;
  requestParameters?: { bucketName?: string } | null;
  userIdentity?: {
    type?: string;
    arn?: string;
    invokedBy?: string;
    sessionContext?: { sessionIssuer?: { arn?: string } };
  };
}

/** Reads a file of CloudTrail records: one JSON record a line, or a JSON array. */
export function readCloudTrail(path: string): CloudTrailRecord[] {
  const text = readFileSync(path, 'utf8').trim();
  if (text.startsWith('[')) return JSON.parse(text) as CloudTrailRecord[];
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as CloudTrailRecord);
}

export function eventMs(r: CloudTrailRecord): number {
  return Date.parse(r.eventTime ?? r['@timestamp'] ?? '');
}

/**
 * The acting principal: the ARN (an assumed role's ARN already names the issuer role and the
 * session); an AWS service acting on its own is named by the service.
 */
export function principalOf(r: CloudTrailRecord): string | undefined {
  const u = r.userIdentity;
  if (!u) return undefined;
  if (u.arn) return u.arn;
  if (u.invokedBy) return `aws-service:${u.invokedBy}`;
  return undefined;
}

const hexOf = (text: string, chars: number) => createHash('sha256').update(text).digest('hex').slice(0, chars);
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });

/** One OTLP/JSON ExportTraceServiceRequest for one record (undefined when it names no principal or time). */
export function recordToRequest(r: CloudTrailRecord, index: number): object | undefined {
  const principal = principalOf(r);
  const ms = eventMs(r);
  if (!principal || !Number.isFinite(ms) || !r.eventSource || !r.eventName) return undefined;
  const id = r.eventID ?? `${index}`;
  const attributes = [
    str('rpc.system', 'aws-api'),
    str('rpc.service', r.eventSource),
    str('rpc.method', r.eventName),
    str('enduser.id', principal),
  ];
  if (r.sourceIPAddress) attributes.push(str('client.address', r.sourceIPAddress));
  if (r.userAgent) attributes.push(str('user_agent.original', r.userAgent));
  if (r.recipientAccountId) attributes.push(str('cloud.account.id', r.recipientAccountId));
  const bucket = r.requestParameters?.bucketName;
  if (typeof bucket === 'string') attributes.push(str('aws.s3.bucket', bucket));
  if (r.errorCode) attributes.push(str('error.type', r.errorCode));
  const startNs = BigInt(ms) * 1_000_000n;
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [str('service.name', r.eventSource), str('cloud.provider', 'aws'), ...(r.awsRegion ? [str('cloud.region', r.awsRegion)] : [])],
        },
        scopeSpans: [
          {
            scope: { name: 'cloudtrail' },
            spans: [
              {
                traceId: hexOf(`trace:${id}`, 32),
                spanId: hexOf(`span:${id}`, 16),
                name: r.eventName,
                kind: 2,
                startTimeUnixNano: startNs.toString(),
                endTimeUnixNano: (startNs + 1_000_000n).toString(),
                attributes,
                status: r.errorCode ? { code: 2, message: r.errorCode } : {},
              },
            ],
          },
        ],
      },
    ],
  };
}

/** The records in event-time order as requests, one per record. */
export function cloudTrailRequests(records: readonly CloudTrailRecord[]): { record: CloudTrailRecord; request: object; traceId: string }[] {
  return records
    .map((record, i) => ({ record, i, ms: eventMs(record) }))
    .sort((a, b) => a.ms - b.ms || a.i - b.i)
    .flatMap(({ record, i }) => {
      const request = recordToRequest(record, i);
      if (!request) return [];
      const traceId = hexOf(`trace:${record.eventID ?? `${i}`}`, 32);
      return [{ record, request, traceId }];
    });
}
