//! Presentation: plans, change sets and findings as text, Markdown and JSON. The stages never
//! format their own output; they hand values here.
