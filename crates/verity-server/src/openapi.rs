//! GET /openapi.json: the agency API described as OpenAPI 3.1, written out by hand (a small,
//! stable surface; a derive framework would add more build time than it saves).

use axum::Json;
use serde_json::{json, Value};

fn problems() -> Value {
    json!({
        "description": "Invalid request: every problem is named (field and reason).",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Problems" } } }
    })
}

fn denied() -> Value {
    json!({
        "401": { "description": "Missing or wrong agency credentials (audited)." },
        "403": { "description": "The agency may not do this, or the body names another ORI (audited)." }
    })
}

/// The document.
pub fn document() -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Verity LESC agency API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Immigration Alien Queries (IAQ) in JSON or Nlets text, answers (IAR), and NCIC hit confirmation. Agencies authenticate with HTTP Basic: the ORI as user name, the issued API key as password. A query is stored durably before it is acknowledged; requests are idempotent by (ORI, message_id). Synthetic data only."
        },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": { "agency": { "type": "http", "scheme": "basic" } },
            "schemas": {
                "Problems": {
                    "type": "object",
                    "required": ["error", "problems"],
                    "properties": {
                        "error": { "type": "string" },
                        "problems": { "type": "array", "items": {
                            "type": "object", "required": ["field", "problem"],
                            "properties": { "field": { "type": "string" }, "problem": { "type": "string" } } } }
                    }
                },
                "Iaq": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["message_id", "purpose", "in_custody"],
                    "properties": {
                        "message_id": { "type": "string", "maxLength": 64, "description": "The client's id; a repeat is the same query." },
                        "ori": { "type": "string", "description": "Optional; must equal the authenticated ORI." },
                        "purpose": { "type": "string", "enum": ["C", "F"] },
                        "attention": { "type": "string", "maxLength": 30 },
                        "phone": { "type": "string", "maxLength": 20 },
                        "name": { "type": "string", "maxLength": 30, "description": "LAST, FIRST MIDDLE. A name or an identifier is required." },
                        "dob": { "type": "string", "description": "YYYY-MM-DD (partial dates YYYY or YYYY-MM accepted); never in the future." },
                        "sex": { "type": "string", "enum": ["M", "F", "X", "U"] },
                        "place_of_birth": { "type": "string", "description": "NCIC 2-character place code (not ISO)." },
                        "in_custody": { "type": "boolean" },
                        "offense_code": { "type": "string", "pattern": "^[0-9]{4}$", "description": "NCIC code of the most serious charge; 0399 when unknown." },
                        "a_number": { "type": "string" },
                        "fbi_number": { "type": "string" },
                        "state_id": { "type": "string" },
                        "driver_license": { "type": "string", "maxLength": 25 },
                        "encounter_state": { "type": "string", "description": "USPS code; with the county, routes the IAR to the field office." },
                        "encounter_county": { "type": "string" },
                        "citizenship_claimed": { "type": "boolean" },
                        "remarks": { "type": "string", "maxLength": 500 }
                    }
                },
                "QueryView": {
                    "type": "object",
                    "properties": {
                        "query_id": { "type": "string" },
                        "message_id": { "type": "string" },
                        "channel": { "type": "string", "enum": ["json", "nlets", "booking"] },
                        "state": { "type": "string", "enum": ["received", "in_review", "answered"] },
                        "received_at": { "type": "string", "format": "date-time" },
                        "answered_at": { "type": ["string", "null"], "format": "date-time" },
                        "duplicate": { "type": "boolean" },
                        "iar": { "oneOf": [{ "$ref": "#/components/schemas/AgencyIar" }, { "type": "null" }] }
                    }
                },
                "AgencyIar": {
                    "type": "object",
                    "description": "What the requesting agency may see of the answer.",
                    "properties": {
                        "query_id": { "type": "string" },
                        "issued_at": { "type": "string" },
                        "name": { "type": ["string", "null"] },
                        "dob": { "type": ["string", "null"] },
                        "a_number": { "type": ["string", "null"] },
                        "identity_confidence": { "type": ["number", "null"] },
                        "identified_by_fingerprints": { "type": "boolean" },
                        "status_text": { "type": "string", "description": "\"No record found\" is reported as exactly that." },
                        "criminal_history": { "type": "array", "items": { "type": "array", "items": { "type": "string" }, "minItems": 3, "maxItems": 3 } },
                        "intended_action_text": { "type": "string" },
                        "lesc_contact": { "type": "string" },
                        "rules_version": { "type": "string" }
                    }
                },
                "HitRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["message_id", "priority", "ncic_number"],
                    "properties": {
                        "message_id": { "type": "string", "maxLength": 64 },
                        "priority": { "type": "string", "enum": ["U", "R"], "description": "U: answer within 10 minutes; R: within 60." },
                        "ori": { "type": "string" },
                        "ncic_number": { "type": "string", "maxLength": 20 },
                        "name": { "type": "string", "maxLength": 30 },
                        "dob": { "type": "string" },
                        "attention": { "type": "string" },
                        "phone": { "type": "string" },
                        "remarks": { "type": "string" }
                    }
                },
                "HitView": {
                    "type": "object",
                    "properties": {
                        "hit_id": { "type": "string" },
                        "message_id": { "type": "string" },
                        "priority": { "type": "string" },
                        "received_at": { "type": "string" },
                        "deadline": { "type": "string" },
                        "state": { "type": "string", "enum": ["open", "escalated", "answered"] },
                        "clock": { "type": "string", "enum": ["waiting", "escalated", "overdue", "answered_in_time", "answered_late"] },
                        "answered_at": { "type": ["string", "null"] },
                        "answer": { "type": ["object", "null"], "description": "confirmed, not_confirmed (with reason) or will_confirm_by (YR, with a time)." },
                        "duplicate": { "type": "boolean" }
                    }
                }
            }
        },
        "security": [{ "agency": [] }],
        "paths": {
            "/v1/iaq": { "post": {
                "summary": "Submit an IAQ (JSON)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Iaq" } } } },
                "responses": {
                    "200": { "description": "Answered at once (the IAR is included).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/QueryView" } } } },
                    "202": { "description": "Stored; the answer follows after review (GET /v1/iaq/{query_id} or /v1/iar).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/QueryView" } } } },
                    "400": problems(),
                    "413": { "description": "Body too large." }
                }
            }},
            "/v1/iaq/{query_id}": { "get": {
                "summary": "The agency's view of one of its queries",
                "parameters": [{ "name": "query_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "The query and, once answered, the IAR.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/QueryView" } } } },
                    "404": { "description": "No such query for this agency." }
                }
            }},
            "/v1/nlets": { "post": {
                "summary": "Submit a legacy Nlets text IAQ",
                "requestBody": { "required": true, "content": { "text/plain": { "schema": { "type": "string", "example": "IAQ.MD0030000.AX.TXT PUR/C.ATN/SGT J DOE.PHN/4105550100.NAM/GARCIA LOPEZ, JOSE LUIS.DOB/19850312.SEX/M.POB/MX.CUS/Y.OFF/1313.ARN/012345678" } } } },
                "responses": {
                    "200": { "description": "IAR text (answered at once).", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "202": { "description": "Acknowledgement text carrying the query id (QID/); the IAR follows at GET /v1/nlets/{query_id}.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "400": { "description": "Rejection text: one ERR/ line per problem (field and reason).", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "413": { "description": "Body too large." }
                }
            }},
            "/v1/nlets/{query_id}": { "get": {
                "summary": "The IAR text of a query, once answered",
                "parameters": [{ "name": "query_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "IAR text.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "202": { "description": "Not answered yet: the acknowledgement again." },
                    "404": { "description": "No such query for this agency." }
                }
            }},
            "/v1/iar": { "get": {
                "summary": "The agency's IAR deliveries (inbox), oldest first",
                "parameters": [
                    { "name": "after", "in": "query", "schema": { "type": "integer" }, "description": "Last delivery_id already read." },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 500 } }
                ],
                "responses": { "200": { "description": "{ deliveries: [{ delivery_id, query_id, issued_at, iar, nlets_text }], next_after }" } }
            }},
            "/v1/hits": { "post": {
                "summary": "Request confirmation of an NCIC hit on an ICE record (YQ)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HitRequest" } } } },
                "responses": {
                    "202": { "description": "Stored, with its deadline.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HitView" } } } },
                    "400": problems()
                }
            }},
            "/v1/hits/{hit_id}": { "get": {
                "summary": "A hit confirmation request and its answer (YR)",
                "parameters": [{ "name": "hit_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "The request.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HitView" } } } },
                    "404": { "description": "No such request for this agency." }
                }
            }},
            "/healthz": { "get": { "summary": "Health", "security": [], "responses": { "200": { "description": "ok" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "security": [], "responses": { "200": { "description": "text exposition format" } } } },
            "/openapi.json": { "get": { "summary": "This document", "security": [], "responses": { "200": { "description": "OpenAPI 3.1" } } } }
        }
    });
    // Every agency route can refuse credentials.
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    if let Some(d) = denied().as_object() {
                        for (k, v) in d {
                            r.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
    }
    doc
}

pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agency_route_is_documented() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        for (path, _, _) in crate::lesc_api::agency_routes() {
            assert!(paths.contains_key(path), "{path} is not documented");
        }
        assert!(doc["paths"]["/v1/iaq"]["post"]["responses"]["401"]["description"].is_string());
    }
}
