// A small mini-program flow against the generated client; CI compiles it with
// `tsc --strict` (make client-check) so the document stays usable without casts.
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/api";

type Problem = components["schemas"]["Problem"];
type AccountKind = components["schemas"]["AccountOut"]["kind"];

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

function explain(problem: Problem): string {
  const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message ?? "有误"}`);
  return [`${problem.code}（${problem.status}）${problem.detail}`, ...fields].join("\n");
}

export async function walk(code: string): Promise<string[]> {
  const lines: string[] = [];

  const login = await api.POST("/api/v1/auth/wechat/login", { body: { code } });
  if (login.error !== undefined) {
    return [explain(login.error)];
  }
  const kind: AccountKind = login.data.account.kind;
  const headers = { Authorization: `Bearer ${login.data.access_token}` };
  lines.push(`${kind} ${login.data.expires_in}s`);

  const me = await api.GET("/api/v1/me", { headers });
  if (me.error !== undefined) {
    return [...lines, explain(me.error)];
  }
  const outflow = me.data.active_outflow;
  if (outflow !== null) {
    // Every outflow transition takes the version /me hands out.
    lines.push(`${outflow.status} v${outflow.version} ${outflow.flags.join(",")}`);
    const moved = await api.POST("/api/v1/outflows/{outflow_id}/return", {
      headers,
      params: { path: { outflow_id: outflow.id } },
      body: { returned_on: "2026-12-01", version: outflow.version },
    });
    if (moved.error !== undefined) {
      lines.push(explain(moved.error));
    } else {
      lines.push(`returned ${moved.data.returned_on ?? ""}`);
    }
  }
  for (const role of me.data.roles) {
    const r: "branch_admin" | "org_admin" = role.role;
    lines.push(`${r}@${role.org.name}`);
  }

  const inbox = await api.GET("/api/v1/me/notifications", {
    headers,
    params: { query: { limit: 20 } },
  });
  if (inbox.error !== undefined) {
    return [...lines, explain(inbox.error)];
  }
  for (const item of inbox.data.items) {
    lines.push(`${item.id} ${item.template} ${item.read ? "已读" : "未读"}`);
    if (item.template === "order_status") {
      // Narrowed by the template: this data has the order-status keys.
      lines.push(`${item.data.order_title ?? item.data.thing1 ?? ""} ${item.page ?? ""}`);
    }
  }
  lines.push(`next: ${inbox.data.next_cursor ?? "-"}`);

  const orders = await api.GET("/api/v1/orders", {
    headers,
    params: { query: { mine: true, limit: 10 } },
  });
  if (orders.error !== undefined) {
    lines.push(explain(orders.error));
  } else {
    for (const order of orders.data.items) {
      lines.push(`${order.id} ${order.status} v${order.version}`);
    }
  }

  const anonymous = await api.GET("/api/v1/me");
  if (anonymous.error !== undefined) {
    lines.push(explain(anonymous.error));
  }
  return lines;
}
