import { isIP } from 'node:net';
import type { AuditCall, AuditRead } from './model.js';
import { field, isObject, MAX_AGENT_LENGTH, timeOf } from './text.js';

/** `rpc.system` of calls read from CloudTrail. */
export const CLOUDTRAIL_SYSTEM = 'aws-api';
/** Prefix of an AWS service acting as itself (`userIdentity.type` `AWSService`). */
export const AWS_SERVICE_PREFIX = 'aws-service:';
/** Prefix of another account named only by its id (`userIdentity.type` `AWSAccount`). */
export const AWS_ACCOUNT_PREFIX = 'aws-account:';

/** Request parameters that name the resource a call acts on, strongest first (after `bucketName`). */
const TARGET_PARAMETERS = [
  'secretId', 'roleName', 'userName', 'functionName', 'trailName', 'name', 'instanceId', 'snapshotId', 'imageId',
  'dBSnapshotIdentifier', 'groupId', 'keyId', 'policyArn',
] as const;

/**
 * The acting principal of a CloudTrail record: its ARN (an assumed role's ARN names the role and
 * the session: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`); an AWS service acting as itself
 * `aws-service:<invokedBy>`; another account named by id only `aws-account:<accountId>`.
 */
export function cloudTrailPrincipal(userIdentity: unknown): string | undefined {
  if (!isObject(userIdentity)) return undefined;
  const type = field(userIdentity.type);
  if (type === 'AWSService') {
    const by = field(userIdentity.invokedBy);
    return by ? AWS_SERVICE_PREFIX + by : undefined;
  }
  const arn = field(userIdentity.arn);
  if (arn) return arn;
  const account = field(userIdentity.accountId);
  if (type === 'AWSAccount' && account) return AWS_ACCOUNT_PREFIX + account;
  const by = field(userIdentity.invokedBy);
  if (by) return AWS_SERVICE_PREFIX + by;
  return undefined;
}

/**
 * A client address as CloudTrail writes it: an IP address, or an AWS service's name
 * (`ec2.amazonaws.com`, `AWS Internal`), which names no client address. Anonymised data writes
 * IPv4 octets with leading zeros (`08.1.250.216`): they are read as their numbers.
 */
export function clientAddressOf(value: unknown): string | undefined {
  const s = field(value, 64);
  if (!s) return undefined;
  if (isIP(s)) return s;
  const octets = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!octets) return undefined;
  const numbers = octets.slice(1).map(Number);
  return numbers.every((n) => n <= 255) ? numbers.join('.') : undefined;
}

function targetOf(record: Record<string, unknown>): { target: string; bucket: boolean } | undefined {
  const params = record.requestParameters;
  if (isObject(params)) {
    const bucket = field(params.bucketName);
    if (bucket) return { target: bucket, bucket: true };
  }
  const resources = record.resources;
  if (Array.isArray(resources) && isObject(resources[0])) {
    const arn = field(resources[0].ARN);
    if (arn) return { target: arn, bucket: false };
  }
  if (isObject(params)) {
    for (const key of TARGET_PARAMETERS) {
      const value = field(params[key]);
      if (value) return { target: value, bucket: false };
    }
  }
  return undefined;
}

/**
 * One CloudTrail record as an audited call at the AWS service: principal, operation
 * (`eventSource` / `eventName`), target, accounts, region, client address and user agent, error
 * code, event time (`eventTime`, or `@timestamp` as some exports write it) and `eventID`.
 */
export function readCloudTrailRecord(record: unknown): AuditRead {
  if (!isObject(record)) return { ok: false, skipped: false, reason: 'not a JSON object' };
  const principal = cloudTrailPrincipal(record.userIdentity);
  if (!principal) return { ok: false, skipped: true, reason: 'no principal (userIdentity names no ARN, service or account)' };
  const service = field(record.eventSource);
  const method = field(record.eventName);
  if (!service || !method) return { ok: false, skipped: false, reason: 'no eventSource or eventName' };
  const startMs = timeOf(record.eventTime) ?? timeOf(record['@timestamp']);
  if (startMs === undefined) return { ok: false, skipped: false, reason: 'no eventTime' };
  const recordId = field(record.eventID) ?? field(record.requestID);
  if (!recordId) return { ok: false, skipped: false, reason: 'no eventID' };
  const call: AuditCall = { principal, service, system: CLOUDTRAIL_SYSTEM, rpcService: service, method, startMs, endMs: startMs, recordId };
  const target = targetOf(record);
  if (target) {
    call.target = target.target;
    if (target.bucket) call.bucket = true;
  }
  const account = field(record.recipientAccountId);
  if (account) call.account = account;
  const identity = record.userIdentity as Record<string, unknown>;
  const callerAccount = field(identity.accountId);
  if (callerAccount) call.callerAccount = callerAccount;
  const region = field(record.awsRegion);
  if (region) call.region = region;
  const address = clientAddressOf(record.sourceIPAddress);
  if (address) call.clientAddress = address;
  const agent = field(record.userAgent, MAX_AGENT_LENGTH);
  if (agent) call.userAgent = agent;
  const error = field(record.errorCode);
  if (error) call.errorCode = error;
  return { ok: true, call };
}

/**
 * The records of one CloudTrail document: `{"Records": [...]}` as AWS writes its log files, a
 * bare array, or one record. Anything else is not CloudTrail (undefined).
 */
export function cloudTrailRecordsOf(document: unknown): unknown[] | undefined {
  if (Array.isArray(document)) return document;
  if (!isObject(document)) return undefined;
  if (Array.isArray(document.Records)) return document.Records;
  if ('eventName' in document || 'eventSource' in document) return [document];
  return undefined;
}
