//! Offline validation: OpenAPI/CRD schemas and Kafka-aware rules -> findings.
