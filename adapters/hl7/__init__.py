"""HL7 v2.5 out of the ledger: charges (DFT^P03), the treatment summary (MDM^T02), the
purge at the cloud PACS (ADT^A23), and their delivery over MLLP with acknowledgements."""
