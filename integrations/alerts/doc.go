// Package alerts receives monitoring webhooks (Alertmanager, Grafana,
// Datadog, Langfuse and reins' own generic JSON) and turns them into
// incidents.Alert values for intake.Service.Ingest (incidents/intake).
//
// Parsers are pure: bytes and headers in, alerts out, errors as
// *incidents.Error with code EINVALID naming the field. NewHandler wraps one
// parser in an HTTP handler that checks the method, REINS_WEBHOOK_TOKEN, the
// media type, the 1 MiB limit and the source's own signature before parsing,
// and answers 200 only once the alerts are stored.
//
// Every source is mapped the same way (docs/api.md): the agent is the first of
// alerts.agent_labels whose value is an agent's name or alias (canonical name
// returned), else the first of those labels present (an unowned agent);
// sessions come from alerts.session_labels in labels, then annotations,
// comma-separated; annotations named *_url and the source's own links become
// links. An alert naming no agent at all refuses the whole request.
//
// A trimmed Alertmanager (version 4) body, as fixtures in testdata/ hold:
//
//	{
//	  "version": "4", "status": "firing", "receiver": "reins", "truncatedAlerts": 0,
//	  "groupKey": "{}/{agent=~\".+\"}:{agent=\"support-bot\"}",
//	  "alerts": [{
//	    "status": "firing",
//	    "labels": {"alertname": "AgentTokenSpike", "agent": "support-bot",
//	               "severity": "critical", "session_id": "s-8812"},
//	    "annotations": {"summary": "Token spend 12x baseline",
//	                    "runbook_url": "https://wiki.example.com/agents/support-bot"},
//	    "startsAt": "2026-11-28T02:01:07.512Z", "endsAt": "0001-01-01T00:00:00Z",
//	    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=…",
//	    "fingerprint": "3f6a9c2d1b7e4a05"
//	  }]
//	}
//
// becomes one firing alert for support-bot, severity critical, session
// s-8812, fingerprint 3f6a9c2d1b7e4a05, links "runbook" and "source".
//
// Per source:
//
//   - alertmanager: fingerprint is Alertmanager's (else a hash of the sorted
//     labels), so the group re-sent every repeat_interval reads as repeats;
//     severity from the severity label (critical/page, error, warning, info;
//     default error); truncatedAlerts > 0 is noted in the first alert's Details.
//
//   - grafana: the same shape with version "1"; panelURL, dashboardURL and
//     silenceURL become links and values go to Details. With a secret, the
//     X-Grafana-Alerting-Signature HMAC (over "timestamp:body" when
//     X-Grafana-Alerting-Signature-Timestamp is sent) is checked.
//
//   - datadog: Datadog's payload is a template the user writes; reins expects
//     the one in docs/alert-sources.md, whose values are all strings:
//
//     {"alert_id": "$ALERT_ID", "aggreg_key": "$AGGREG_KEY",
//     "alert_transition": "$ALERT_TRANSITION", "alert_priority": "$ALERT_PRIORITY",
//     "tags": "$TAGS", "link": "$LINK", "title": "$EVENT_TITLE",
//     "body": "$EVENT_MSG", "date": "$DATE", …}
//
//     The agent and sessions come from "key:value" tags ($TAGS, $ALERT_SCOPE),
//     e.g. "agent:support-bot,session_id:s-1"; "Recovered" resolves; priority
//     P1..P5 maps to critical, error, warning, info, info.
//
//   - generic: docs/alert-sources.md's generic body, decoded strictly (unknown fields refused);
//     fingerprint is dedup_key, else a hash of agent and summary.
//
//   - langfuse: {"type":"monitor-alert","payload":{…}}; fingerprint is the
//     monitor ID; severity OK or a title starting "[OK]" resolves. Langfuse
//     alerts have no labels: the agent comes from the alert's filters
//     (metadata agent = support-bot, or a tag "agent:support-bot"), else from
//     a title starting "[support-bot]". With a secret, x-langfuse-signature
//     (t=<unix>,v1=<hex HMAC-SHA256 of "t.body">) is checked within 5 minutes.
package alerts
