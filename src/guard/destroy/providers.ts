/**
 * Ending machines and cluster objects: provider CLIs (however named or invoked: options before the verb,
 * other names, absolute paths, `python -m`, a `vast.py` script), cloud CLIs, Kubernetes, and HTTP calls
 * to a provider's terminate/delete endpoints. Stops that keep the disk (`vastai stop`) are allowed.
 */
import { UNKNOWN } from "../shell.js";
import { positionals, push, type State } from "./state.js";

/** every spelling of a provider CLI → one family name */
export function providerFamily(name: string): string | null {
  const n = name.toLowerCase().replace(/\.(py|sh|exe|js)$/, "").replace(/[-_]?cli$/, "").replace(/[-_.]/g, "");
  if (/^vast(ai)?$/.test(n)) return "vastai";
  if (/^runpod(ctl)?$/.test(n)) return "runpod";
  if (/^(lambda|lambdacloud|lambdalabs|lambdactl)$/.test(n)) return "lambda";
  if (/^(pspace|paperspace|gradient)$/.test(n)) return "paperspace";
  if (/^(autodl|autodlctl)$/.test(n)) return "autodl";
  if (/^(tensordock|jarvislabs|jl|datacrunch|coreweave|fluidstack|hyperstack|vultr|linode|hcloud|doctl|scw|exo|oci|ibmcloud|gcloud|az|aws|sky|terraform|tofu|pulumi|kubectl|oc|helm)$/.test(n)) return n === "tofu" ? "terraform" : n === "oc" ? "kubectl" : n;
  return null;
}

const END_VERBS = /^(destroy|delete|del|rm|remove|terminate|release|kill|purge|teardown|down)$/i;
/** objects whose deletion ends nothing (a key, a template, a schedule) */
const HARMLESS_OBJECTS = /^(ssh-?keys?|api-?keys?|env-?vars?|templates?|scheduled-?jobs?|teams?-?roles?|workergroups?|autoscalers?)$/i;

/** family → verb check; true when handled */
export function checkProvider(family: string, name: string, texts: string[], st: State): boolean {
  const pos = positionals(texts);
  const verbAt = pos.findIndex((t) => END_VERBS.test(t) || t.includes("释放") || t.includes("销毁"));
  switch (family) {
    case "vastai": case "runpod": case "lambda": case "paperspace": case "autodl":
    case "tensordock": case "jarvislabs": case "jl": case "datacrunch": case "coreweave": case "fluidstack": case "hyperstack": {
      if (verbAt < 0) {
        // `vastai "$@"`, `vastai $VERB instance 1`: the verb is not known here, so it may be destroy
        const u = pos.findIndex((t) => t.includes(UNKNOWN));
        if (u >= 0 && !pos.slice(0, u).some((t) => /^(show|search|logs|ls|list|get|create|launch|start|stop|copy|cp|ssh-url|scp-url|label|set|config|help|version|attach|exec|execute|reboot|cloud|transfer|tfa|invoice|report|update|change|prepay)$/i.test(t))) push(st, "obfuscated", `${name} <?>`, `${name} with a subcommand computed at run time: it may be destroy; refusing to guess`);
        return true;
      }
      const obj = pos[verbAt + 1] ?? "";
      if (/^(delete|del|rm|remove)$/i.test(pos[verbAt]!) && HARMLESS_OBJECTS.test(obj)) return true;
      push(st, "instance", `${name} ${pos[verbAt]}`, `${pos.slice(verbAt).join(" ").slice(0, 80)} on ${family}: ends the instance or its storage (its disk is lost)`);
      return true;
    }
    case "aws": {
      const v = pos.find((t) => /^(terminate-instances|delete-volume|delete-snapshot|delete-bucket|rb|delete-file-system|delete-cluster|delete-stack|delete-db-instance)$/.test(t));
      if (v) push(st, "instance", `aws ${v}`, `${v} on AWS`);
      else if (pos.includes("s3") && pos.includes("rm")) push(st, "delete", "aws s3 rm", `deletes objects from S3${texts.includes("--recursive") ? " recursively" : ""}`);
      return true;
    }
    case "kubectl": {
      const withArg = new Set(["-n", "--namespace", "--context", "--cluster", "--kubeconfig", "--user", "-s", "--server", "--as", "--token", "--request-timeout"]);
      const v = positionals(texts, withArg)[0];
      if (v === "delete") push(st, "k8s", `${name} delete`, `deletes ${pos.slice(1, 4).join(" ") || "cluster objects"}`);
      if (v === "drain") push(st, "k8s", `${name} drain`, "evicts every pod on a node");
      if (v === "scale" && texts.some((t) => /^--replicas=0$/.test(t))) push(st, "k8s", `${name} scale --replicas=0`, "scales a workload to nothing");
      return true;
    }
    case "helm": {
      const v = pos[0];
      if (v && /^(uninstall|delete|del|un)$/.test(v)) push(st, "k8s", `helm ${v}`, `uninstalls release ${pos[1] ?? ""}`);
      return true;
    }
    case "sky": {
      if (pos[0] === "down" || (pos[0] === "autostop" && texts.includes("--down"))) push(st, "instance", `sky ${pos[0]}`, "tears down a SkyPilot cluster");
      return true;
    }
    case "terraform": case "pulumi": {
      if (pos[0] === "destroy" || (pos[0] === "apply" && texts.includes("-destroy")) || (pos[0] === "down")) push(st, "instance", `${name} destroy`, "destroys managed infrastructure");
      return true;
    }
    default: {
      // gcloud, az, doctl, hcloud, linode, vultr, oci, ibmcloud, exo, scw
      const v = pos.find((t) => /^(delete|destroy|terminate|remove|rm)$/.test(t));
      if (v) push(st, "instance", `${name} … ${v}`, `${pos.slice(0, 5).join(" ")} on ${family}`);
      return true;
    }
  }
}

export const HTTP_CLIENTS = new Set(["curl", "wget", "http", "https", "httpie", "xh", "curlie", "aria2c"]);
export const PROVIDER_HOSTS = /(lambdalabs\.com|lambda\.ai|runpod\.io|vast\.ai|paperspace\.com|paperspace\.io|autodl\.com|autodl\.art|datacrunch\.io|coreweave\.com|tensordock\.com|jarvislabs\.ai|fluidstack\.io|hyperstack\.cloud|amazonaws\.com|googleapis\.com|azure\.com)/i;
const TERMINATE_PATH = /instance-operations\/terminate|\/instances?\/[^/\s]+\/(terminate|destroy|release)|\/(terminate|destroy|release|destroyMachine|deleteMachine)(\b|_)|podTerminate|instance\/release|Action=TerminateInstances/i;
const MUTATIONS = /podTerminate|podRemove|instanceTerminate|destroyInstance|terminateInstance|deletePod|destroy_instance|terminate_pod/;

/** An HTTP call (any client, any code) that ends an instance: its URL, method and body texts. */
export function httpDestroy(texts: string[], methodHint: string): string | null {
  const urls = texts.filter((t) => /^[a-z]+:\/\//i.test(t) || /\.(com|io|ai|art|cloud)(:\d+)?\//.test(t));
  for (const u of urls) {
    if (TERMINATE_PATH.test(u)) return `calls a provider API that ends the instance (${u.replaceAll(UNKNOWN, "<?>").slice(0, 80)})`;
    if (methodHint === "DELETE" && PROVIDER_HOSTS.test(u)) return `deletes a provider resource (${u.replaceAll(UNKNOWN, "<?>").slice(0, 80)})`;
  }
  if (MUTATIONS.test(texts.join(" "))) return "sends a provider API mutation that terminates an instance";
  return null;
}

export function checkHttp(name: string, texts: string[], st: State): void {
  let method = "";
  for (let j = 0; j < texts.length; j++) {
    const t = texts[j]!;
    if (t === "-X" || t === "--request" || t === "--method" || /^-[a-zA-Z]+X$/.test(t)) method = (texts[j + 1] ?? "").toUpperCase();
    else if (/^-[a-zA-Z]*X./.test(t)) method = t.slice(t.indexOf("X") + 1).toUpperCase();
    else if (/^--(request|method)=/.test(t)) method = t.slice(t.indexOf("=") + 1).toUpperCase();
  }
  if (!method && (name === "http" || name === "https" || name === "xh" || name === "httpie" || name === "curlie")) method = (texts.find((t) => /^(DELETE|POST|GET|PUT|PATCH)$/i.test(t)) ?? "").toUpperCase();
  const why = httpDestroy(texts, method);
  if (why) push(st, "instance", `${name} ${method || "request"}`.trim(), why);
  // `curl -X DELETE "$URL"`: a delete whose target is computed at run time may be a provider's instance
  else if (method === "DELETE" && !texts.some((t) => /^[a-z]+:\/\/[^\u0001]*[A-Za-z]/i.test(t) && !t.startsWith(UNKNOWN)) && texts.some((t) => t.startsWith(UNKNOWN))) push(st, "obfuscated", `${name} DELETE <?>`, "an HTTP DELETE to a URL computed at run time: it may end a provider's instance; refusing to guess");
}
