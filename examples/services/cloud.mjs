// The CI/CD side of the demo: a Kubernetes-like platform API, cloud-storage-like and IAM-like
// APIs, and the deployer job that calls them with its service-account token. The APIs'
// authentication middleware records the principal (`enduser.id`) on their server spans.
import { ATTR, HOME_ACCOUNT, HOME_REGION, bearerAuth, callJson, createRouter, fail, listen } from './lib.mjs';
import { SpanKind, inSpan, nodeHttp } from './telemetry.mjs';

/** The principal the deployer's token stands for. */
export const DEPLOYER_PRINCIPAL = 'system:serviceaccount:ci:deployer';
/** The bucket holding build artifacts. */
export const ARTIFACT_BUCKET = 'ci-artifacts';
/** Client software of the deployer. */
export const DEPLOYER_USER_AGENT = 'deployer/1.8 (ci; node)';

const tokensOf = (ctx) => new Map([[ctx.secrets.deployerToken, DEPLOYER_PRINCIPAL]]);
const cloudResource = (name) => ({
  'service.name': name,
  'service.namespace': 'cloud',
  'cloud.region': HOME_REGION,
  'cloud.provider': 'demo',
});

export const platformApi = {
  resource: { 'service.name': 'platform-api', 'service.namespace': 'platform', 'cloud.region': HOME_REGION, 'k8s.cluster.name': 'prod-eu' },
  async start(ctx) {
    const images = new Map();
    const router = createRouter({ authenticate: bearerAuth(tokensOf(ctx)) })
      .route('GET', '/apis/apps/v1/namespaces/{namespace}/deployments/{name}', ({ params }) => ({
        kind: 'Deployment',
        metadata: { namespace: params.namespace, name: params.name },
        spec: { image: images.get(`${params.namespace}/${params.name}`) ?? `${params.name}:1.0.0` },
      }))
      .route('PATCH', '/apis/apps/v1/namespaces/{namespace}/deployments/{name}', ({ params, body }) => {
        if (typeof body?.image !== 'string' || body.image.length > 200) fail(400, 'image required');
        images.set(`${params.namespace}/${params.name}`, body.image);
        return { kind: 'Deployment', metadata: { namespace: params.namespace, name: params.name }, spec: { image: body.image } };
      })
      .route('GET', '/api/v1/namespaces/{namespace}/pods', ({ params }) => ({
        kind: 'PodList',
        items: [1, 2, 3].map((i) => ({ metadata: { namespace: params.namespace, name: `pod-${i}` }, status: { phase: 'Running' } })),
      }));
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

export const storageApi = {
  resource: cloudResource('storage-api'),
  async start(ctx) {
    const router = createRouter({ authenticate: bearerAuth(tokensOf(ctx)) })
      .route('GET', '/accounts/{account}/buckets', ({ params, span }) => {
        span?.setAttribute(ATTR.account, params.account);
        return { buckets: ['ci-artifacts', 'backups', 'customer-exports'].map((b) => `${b}-${params.account.slice(0, 4)}`) };
      })
      .route('GET', '/accounts/{account}/buckets/{bucket}/objects/{key}', ({ params, span }) => {
        span?.setAttribute(ATTR.account, params.account);
        span?.setAttribute(ATTR.bucket, params.bucket);
        return { bucket: params.bucket, key: params.key, size: 4096 };
      });
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

export const iamApi = {
  resource: cloudResource('iam-api'),
  async start(ctx) {
    const router = createRouter({ authenticate: bearerAuth(tokensOf(ctx)) })
      .route('POST', '/accounts/{account}/deploy-credentials', ({ params, span }) => {
        span?.setAttribute(ATTR.account, params.account);
        return { expiresIn: 900 };
      })
      .route('GET', '/accounts/{account}/role-bindings', ({ params, span }) => {
        span?.setAttribute(ATTR.account, params.account);
        return { bindings: [{ role: 'admin', members: [`user:ops@${params.account}`] }] };
      });
    return { port: await listen(nodeHttp().createServer(router.handler)) };
  },
};

/** The CI/CD deployer: a job that rolls out a new image with its service-account token. */
export const deployer = {
  resource: {
    'service.name': 'deployer',
    'service.namespace': 'ci',
    'cloud.region': HOME_REGION,
    'cloud.account.id': HOME_ACCOUNT,
    'k8s.cluster.name': 'ci-eu',
  },
  async start(ctx) {
    const call = (method, service, path, body) =>
      callJson(method, `${ctx.peer(service)}${path}`, {
        body,
        headers: { authorization: `Bearer ${ctx.secrets.deployerToken}` },
        userAgent: DEPLOYER_USER_AGENT,
      });
    return {
      tasks: {
        /** The normal job: fetch credentials and the artifact, roll the deployment, watch the pods. */
        async deploy({ app, version }) {
          return inSpan(`deploy ${app}`, { kind: SpanKind.INTERNAL }, async () => {
            await call('POST', 'iam-api', `/accounts/${HOME_ACCOUNT}/deploy-credentials`, { app });
            await call('GET', 'storage-api', `/accounts/${HOME_ACCOUNT}/buckets/${ARTIFACT_BUCKET}/objects/${app}-${version}.tgz`);
            await call('GET', 'platform-api', `/apis/apps/v1/namespaces/shop/deployments/${app}`);
            await call('PATCH', 'platform-api', `/apis/apps/v1/namespaces/shop/deployments/${app}`, { image: `${app}:${version}` });
            await call('GET', 'platform-api', '/api/v1/namespaces/shop/pods');
            return { app, version };
          });
        },
        /**
         * Misconduct: a poisoned build step reuses the job's token to list the buckets and IAM
         * bindings of every account it can name.
         */
        async enumerate({ accounts }) {
          return inSpan('build step: post-install', { kind: SpanKind.INTERNAL }, async () => {
            let listed = 0;
            for (const account of accounts) {
              if ((await call('GET', 'storage-api', `/accounts/${account}/buckets`)).status === 200) listed++;
              await call('GET', 'iam-api', `/accounts/${account}/role-bindings`);
            }
            return { listed };
          });
        },
      },
    };
  },
};
