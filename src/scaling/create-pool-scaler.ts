/**
 * The one place a scaler implementation is chosen from its configuration (Node: the local kind
 * launches processes). The Worker, which cannot run the local kind, constructs KubernetesScaler or
 * WebhookScaler directly; this file is kept out of its build (tsconfig.json) because it imports
 * local-scaler.ts.
 */
import { KubernetesScaler, type KubernetesClientOptions } from "./kubernetes-scaler";
import { LocalScaler, type LocalScalerOptions } from "./local-scaler";
import { parsePoolScalerConfig, type PoolScaler } from "./pool-scaler";
import { WebhookScaler, type WebhookScalerOptions } from "./webhook-scaler";

/** Per-kind transport and process options (tests inject fetch, launchers and clocks here). */
export interface PoolScalerOptions {
  local?: LocalScalerOptions;
  kubernetes?: KubernetesClientOptions;
  webhook?: WebhookScalerOptions;
}

/** Validates `config` (throws ConfigError naming the field) and builds the scaler of its kind. A local scaler starts its minReplicas at once. */
export function createPoolScaler(config: unknown, options: PoolScalerOptions = {}): PoolScaler {
  const parsed = parsePoolScalerConfig(config);
  switch (parsed.kind) {
    case "local":
      return new LocalScaler(parsed, options.local);
    case "kubernetes":
      return new KubernetesScaler(parsed, options.kubernetes);
    case "webhook":
      return new WebhookScaler(parsed, options.webhook);
  }
}
