"""INSTRUCTOR-style instruction fine-tuning: MEDI-format data, its builders and the trainer."""
