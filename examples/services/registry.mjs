// Every demo service by the name it is started under.
import { deployer, iamApi, platformApi, storageApi } from './cloud.mjs';
import { nightlyExport } from './data.mjs';
import { catalog, checkout, ledger, payments, storefront } from './shop.mjs';
import { recordsApi, supportAgent } from './support.mjs';

export const SERVICES = {
  'platform-api': platformApi,
  'storage-api': storageApi,
  'iam-api': iamApi,
  deployer,
  catalog,
  storefront,
  checkout,
  payments,
  ledger,
  'records-api': recordsApi,
  'support-agent': supportAgent,
  'nightly-export': nightlyExport,
};
