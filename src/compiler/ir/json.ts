// Attribute values of graph nodes: plain JSON, so a graph serialises as it is.
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };
