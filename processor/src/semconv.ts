/**
 * Every span and resource attribute key conduct reads, in one place. Where OpenTelemetry renamed
 * an attribute, both names are listed: the current one first, then the deprecated one, and code
 * reads them in that order (see {@link firstOf} in `calls/attrs.ts`).
 */

// --- Resource: who the caller is and where it runs ------------------------------------------
export const SERVICE_NAME = 'service.name';
export const SERVICE_NAMESPACE = 'service.namespace';
/** The caller's build: a new value with new behaviour on its replicas is a release. */
export const SERVICE_VERSION = 'service.version';
export const CLOUD_REGION = 'cloud.region';
/** On a resource: the caller's own account. On a span: the account the call targets. */
export const CLOUD_ACCOUNT_ID = 'cloud.account.id';
export const CLOUD_RESOURCE_ID = 'cloud.resource_id';
export const HOST_NAME = 'host.name';
export const K8S_CLUSTER_NAME = 'k8s.cluster.name';

// --- Identity -------------------------------------------------------------------------------
export const GEN_AI_AGENT_ID = 'gen_ai.agent.id';
export const GEN_AI_AGENT_NAME = 'gen_ai.agent.name';
export const ENDUSER_ID = 'enduser.id';
export const USER_ID = 'user.id';
export const TLS_CLIENT_SUBJECT = 'tls.client.subject';

// --- Client side of a server span -----------------------------------------------------------
export const CLIENT_ADDRESS = 'client.address';
/** Deprecated: the socket peer address (before `client.address` / `network.peer.address`). */
export const NET_SOCK_PEER_ADDR = 'net.sock.peer.addr';
export const NETWORK_PEER_ADDRESS = 'network.peer.address';
export const USER_AGENT_ORIGINAL = 'user_agent.original';
/** Deprecated name of `user_agent.original`. */
export const HTTP_USER_AGENT = 'http.user_agent';

// --- HTTP -----------------------------------------------------------------------------------
export const HTTP_REQUEST_METHOD = 'http.request.method';
/** Deprecated name of `http.request.method`. */
export const HTTP_METHOD = 'http.method';
export const HTTP_ROUTE = 'http.route';
export const URL_FULL = 'url.full';
/** Deprecated name of `url.full`. */
export const HTTP_URL = 'http.url';
export const URL_PATH = 'url.path';
/** Deprecated: path and query of a server request. */
export const HTTP_TARGET = 'http.target';
export const HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
/** Deprecated name of `http.response.status_code`. */
export const HTTP_STATUS_CODE = 'http.status_code';

// --- Peer -----------------------------------------------------------------------------------
export const SERVICE_PEER_NAME = 'service.peer.name';
/** Deprecated name of `service.peer.name`. */
export const PEER_SERVICE = 'peer.service';
export const SERVER_ADDRESS = 'server.address';
export const SERVER_PORT = 'server.port';
/** Deprecated name of `server.address` on client spans. */
export const NET_PEER_NAME = 'net.peer.name';
/** Deprecated name of `server.port` on client spans. */
export const NET_PEER_PORT = 'net.peer.port';

// --- Databases ------------------------------------------------------------------------------
export const DB_SYSTEM_NAME = 'db.system.name';
/** Deprecated name of `db.system.name`. */
export const DB_SYSTEM = 'db.system';
export const DB_NAMESPACE = 'db.namespace';
/** Deprecated name of `db.namespace`. */
export const DB_NAME = 'db.name';
export const DB_OPERATION_NAME = 'db.operation.name';
/** Deprecated name of `db.operation.name`. */
export const DB_OPERATION = 'db.operation';
export const DB_COLLECTION_NAME = 'db.collection.name';
/** Deprecated names of `db.collection.name`. */
export const DB_SQL_TABLE = 'db.sql.table';
export const DB_MONGODB_COLLECTION = 'db.mongodb.collection';
export const DB_CASSANDRA_TABLE = 'db.cassandra.table';
export const DB_QUERY_TEXT = 'db.query.text';
/** Low-cardinality summary of the query (`SELECT orders`), semconv 1.30 and later. */
export const DB_QUERY_SUMMARY = 'db.query.summary';
/** Deprecated name of `db.query.text`. */
export const DB_STATEMENT = 'db.statement';

// --- Messaging ------------------------------------------------------------------------------
export const MESSAGING_SYSTEM = 'messaging.system';
export const MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
/** Deprecated name of `messaging.destination.name`. */
export const MESSAGING_DESTINATION = 'messaging.destination';
export const MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const MESSAGING_OPERATION_NAME = 'messaging.operation.name';
/** Deprecated name of `messaging.operation.type`. */
export const MESSAGING_OPERATION = 'messaging.operation';

// --- RPC ------------------------------------------------------------------------------------
export const RPC_SYSTEM = 'rpc.system';
export const RPC_SERVICE = 'rpc.service';
export const RPC_METHOD = 'rpc.method';

// --- Generative AI --------------------------------------------------------------------------
export const GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const GEN_AI_TOOL_NAME = 'gen_ai.tool.name';
/** Value of `gen_ai.operation.name` on a tool execution span. */
export const GEN_AI_EXECUTE_TOOL = 'execute_tool';

// --- Errors -------------------------------------------------------------------------------
export const ERROR_TYPE = 'error.type';

// --- Audit records (conduct's own keys: calls read from audit logs, see processor/src/audit) ---
/** The audit record's own id: CloudTrail `eventID`, Kubernetes `auditID`. */
export const CONDUCT_AUDIT_RECORD_ID = 'conduct.audit.record_id';
/** The region the audited API call was served in (CloudTrail `awsRegion`). */
export const CONDUCT_AUDIT_REGION = 'conduct.audit.region';
/** The caller's own account (CloudTrail `userIdentity.accountId`). */
export const CONDUCT_AUDIT_CALLER_ACCOUNT = 'conduct.audit.caller_account';

// --- Targets --------------------------------------------------------------------------------
export const AWS_S3_BUCKET = 'aws.s3.bucket';

/** Current name first, then deprecated names: read in this order. */
export const HTTP_METHOD_KEYS = [HTTP_REQUEST_METHOD, HTTP_METHOD] as const;
export const URL_FULL_KEYS = [URL_FULL, HTTP_URL] as const;
export const URL_PATH_KEYS = [URL_PATH, HTTP_TARGET] as const;
export const HTTP_STATUS_KEYS = [HTTP_RESPONSE_STATUS_CODE, HTTP_STATUS_CODE] as const;
export const PEER_SERVICE_KEYS = [SERVICE_PEER_NAME, PEER_SERVICE] as const;
export const SERVER_ADDRESS_KEYS = [SERVER_ADDRESS, NET_PEER_NAME] as const;
export const SERVER_PORT_KEYS = [SERVER_PORT, NET_PEER_PORT] as const;
export const DB_SYSTEM_KEYS = [DB_SYSTEM_NAME, DB_SYSTEM] as const;
export const DB_NAMESPACE_KEYS = [DB_NAMESPACE, DB_NAME] as const;
export const DB_OPERATION_KEYS = [DB_OPERATION_NAME, DB_OPERATION] as const;
export const DB_COLLECTION_KEYS = [DB_COLLECTION_NAME, DB_SQL_TABLE, DB_MONGODB_COLLECTION, DB_CASSANDRA_TABLE] as const;
export const DB_QUERY_KEYS = [DB_QUERY_TEXT, DB_STATEMENT] as const;
export const MESSAGING_DESTINATION_KEYS = [MESSAGING_DESTINATION_NAME, MESSAGING_DESTINATION] as const;
export const MESSAGING_OPERATION_KEYS = [MESSAGING_OPERATION_TYPE, MESSAGING_OPERATION_NAME, MESSAGING_OPERATION] as const;
export const CLIENT_ADDRESS_KEYS = [CLIENT_ADDRESS, NET_SOCK_PEER_ADDR, NETWORK_PEER_ADDRESS] as const;
export const USER_AGENT_KEYS = [USER_AGENT_ORIGINAL, HTTP_USER_AGENT] as const;

/**
 * Every attribute key above that conduct reads a value of. The receivers decode only these (and
 * the identity rules' keys, see `pipeline/keep.ts`); keep it complete when adding a key above.
 */
export const READ_ATTRIBUTE_KEYS: readonly string[] = [
  SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_VERSION, CLOUD_REGION, CLOUD_ACCOUNT_ID, CLOUD_RESOURCE_ID, HOST_NAME, K8S_CLUSTER_NAME,
  GEN_AI_AGENT_ID, GEN_AI_AGENT_NAME, ENDUSER_ID, USER_ID, TLS_CLIENT_SUBJECT,
  CLIENT_ADDRESS, NET_SOCK_PEER_ADDR, NETWORK_PEER_ADDRESS, USER_AGENT_ORIGINAL, HTTP_USER_AGENT,
  HTTP_REQUEST_METHOD, HTTP_METHOD, HTTP_ROUTE, URL_FULL, HTTP_URL, URL_PATH, HTTP_TARGET, HTTP_RESPONSE_STATUS_CODE, HTTP_STATUS_CODE,
  SERVICE_PEER_NAME, PEER_SERVICE, SERVER_ADDRESS, SERVER_PORT, NET_PEER_NAME, NET_PEER_PORT,
  DB_SYSTEM_NAME, DB_SYSTEM, DB_NAMESPACE, DB_NAME, DB_OPERATION_NAME, DB_OPERATION, DB_COLLECTION_NAME, DB_SQL_TABLE,
  DB_MONGODB_COLLECTION, DB_CASSANDRA_TABLE, DB_QUERY_TEXT, DB_STATEMENT, DB_QUERY_SUMMARY,
  MESSAGING_SYSTEM, MESSAGING_DESTINATION_NAME, MESSAGING_DESTINATION, MESSAGING_OPERATION_TYPE, MESSAGING_OPERATION_NAME, MESSAGING_OPERATION,
  RPC_SYSTEM, RPC_SERVICE, RPC_METHOD,
  GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME,
  ERROR_TYPE, CONDUCT_AUDIT_RECORD_ID, CONDUCT_AUDIT_REGION, CONDUCT_AUDIT_CALLER_ACCOUNT,
  AWS_S3_BUCKET,
];

/**
 * Prefixes of keys whose mere presence conduct asks about: a span of unspecified kind with any
 * such key is taken for a client span (`calls/derive.ts`). Keys outside READ_ATTRIBUTE_KEYS with
 * these prefixes are decoded only as far as telling that one is there.
 */
export const PRESENCE_PREFIXES: readonly string[] = ['db.', 'messaging.', 'rpc.', 'url.full', 'http.url', 'server.address', 'net.peer.'];
