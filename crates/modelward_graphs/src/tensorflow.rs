//! TensorFlow SavedModel (`saved_model.pb`) and Keras' `keras_metadata.pb`.
//!
//! A SavedModel is a protobuf holding one or more graphs and a library of functions; loading it
//! runs initializers and, when a signature is called, any op in the graph or in a function. Some
//! ops reach the host: `ReadFile`, `WriteFile`, `MatchingFiles`, `PrintV2` to a `file://`
//! stream, checkpoint ops with a path the graph chooses, `ImmutableConst` (maps a file), the debug
//! ops that dump to a directory, file-reading datasets and readers, and `PyFunc`/`EagerPyFunc`
//! (call back into Python). [`check_saved_model`] decodes the model with a vendored subset of the
//! TensorFlow protos (nodes, inputs, a few attributes, function library, saver, assets), lists
//! every op, and reports:
//!
//! - `TFM101`: Python callback ops; `TFM102`: ops that touch files (or a path constant that
//!   leaves the model); `TFM103`: checkpoint and table-from-file ops outside the standard saver;
//!   `TFM104`: ops outside the known op set (low); `TFM105`: the op inventory (info);
//!   `TFM106`: asset file names that leave the assets folder; `TFM107`: unreadable protobuf.
//!
//! [`check_graph_def`] runs the same op checks on a bare `GraphDef` (a TF1 frozen graph).

use crate::proto::keras_metadata::SavedMetadata;
use crate::proto::tensorflow::{GraphDef, NodeDef, SavedModel, attr_value};
use crate::wire::{self, EstimateError};
use modelward_diagnostics::Fact;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most bytes of struct memory a SavedModel decode may cost; above it the file is reported as
/// not scanned instead of decoded.
pub const MAX_DECODE_MEMORY: u64 = 256 << 20;
/// Most op names listed in the inventory fact.
pub const MAX_INVENTORY_OPS: usize = 80;
/// Most findings of one rule per file.
pub const MAX_FACTS_PER_RULE: usize = 50;
/// How many `Identity` hops are followed back to a path constant.
const MAX_CONST_HOPS: usize = 4;

/// Ops that call back into the Python process.
#[rustfmt::skip]
const PY_FUNC_OPS: &[&str] = &[
    "EagerPyFunc", "PyFunc", "PyFuncStateless",
];

/// Ops that read, write, list or map host files, or dump to a directory, whatever their inputs.
#[rustfmt::skip]
const FILE_OPS: &[&str] = &[
    "CSVDataset", "CSVDatasetV2", "CreateSummaryDbWriter", "CreateSummaryFileWriter",
    "DatasetToTFRecord", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
    "DebugNumericSummary", "ExperimentalCSVDataset", "ExperimentalDatasetToTFRecord",
    "ExperimentalLMDBDataset", "ExperimentalSqlDataset", "FileSystemSetConfiguration",
    "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2", "ImmutableConst", "LMDBDataset", "LMDBReader",
    "LoadAndRemapMatrix", "LoadDataset", "MatchingFiles", "ReadFile", "SaveDataset",
    "SaveDatasetV2", "SimpleMLLoadModelFromPath", "SimpleMLLoadModelFromPathWithHandle",
    "SnapshotDataset", "SnapshotDatasetV2", "SqlDataset", "TFRecordDataset", "TFRecordDatasetV2",
    "TFRecordReader", "TFRecordReaderV2", "TextLineDataset", "TextLineReader", "TextLineReaderV2",
    "WholeFileReader", "WholeFileReaderV2", "WriteFile",
];

/// Ops that take a file path as input 0 and are normal in the standard saver or with assets.
#[rustfmt::skip]
const PATH_OPS: &[&str] = &[
    "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "MergeV2Checkpoints",
    "Restore", "RestoreSlice", "RestoreV2", "Save", "SaveSlices", "SaveV2",
];

/// Ops seen in ordinary models (inference, training, the saver, tables, control flow).
/// Sorted; a unit test keeps it so.
#[rustfmt::skip]
const KNOWN_OPS: &[&str] = &[
    "Abs", "Acos", "Acosh", "Add", "AddN", "AddV2", "AdjustContrastv2", "AdjustHue",
    "AdjustSaturation", "All", "Angle", "AnonymousHashTable", "AnonymousIteratorV2",
    "AnonymousIteratorV3", "AnonymousMutableDenseHashTable", "AnonymousMutableHashTable",
    "AnonymousMutableHashTableOfTensors", "Any", "ApproximateEqual", "ArgMax", "ArgMin",
    "AsString", "Asin", "Asinh", "Assert", "Assign", "AssignAdd", "AssignAddVariableOp",
    "AssignSub", "AssignSubVariableOp", "AssignVariableOp", "Atan", "Atan2", "Atanh", "AvgPool",
    "AvgPool3D", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
    "BatchNormWithGlobalNormalization", "BatchToSpace", "BatchToSpaceND", "BesselI0e", "BesselI1e",
    "Betainc", "BiasAdd", "BiasAddV1", "Bincount", "Bitcast", "BitwiseAnd", "BitwiseOr",
    "BitwiseXor", "BroadcastArgs", "BroadcastGradientArgs", "BroadcastTo", "Bucketize", "Case",
    "Cast", "Ceil", "CheckNumerics", "CheckNumericsV2", "Cholesky", "ClipByValue",
    "CombinedNonMaxSuppression", "Complex", "ComplexAbs", "Concat", "ConcatOffset", "ConcatV2",
    "Conj", "ConjugateTranspose", "Const", "ControlTrigger", "Conv", "Conv1D", "Conv2D",
    "Conv2DBackpropFilter", "Conv2DBackpropInput", "Conv3D", "Conv3DBackpropFilterV2",
    "Conv3DBackpropInputV2", "Cos", "Cosh", "CountUpTo", "CropAndResize", "Cross", "CudnnRNN",
    "CudnnRNNBackpropV3", "CudnnRNNCanonicalToParams", "CudnnRNNParamsToCanonical", "CudnnRNNV2",
    "CudnnRNNV3", "Cumprod", "Cumsum", "DataFormatDimMap", "DataFormatVecPermute", "DecodeBase64",
    "DecodeBmp", "DecodeCSV", "DecodeGif", "DecodeImage", "DecodeJpeg", "DecodePng", "DecodeRaw",
    "DeepCopy", "DeleteIterator", "DenseBincount", "DepthToSpace", "DepthwiseConv2d",
    "DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropFilter",
    "DepthwiseConv2dNativeBackpropInput", "Dequantize", "DestroyResourceOp",
    "DestroyTemporaryVariable", "Diag", "DiagPart", "Digamma", "Dilation2D", "DisableCopyOnRead",
    "Div", "DivNoNan", "DynamicPartition", "DynamicStitch", "Einsum", "Elu", "EluGrad", "Empty",
    "EmptyTensorList", "EncodeBase64", "EncodeJpeg", "EncodePng", "EnsureShape", "Enter", "Equal",
    "Erf", "Erfc", "Erfinv", "EuclideanNorm", "Exit", "Exp", "ExpandDims", "Expm1",
    "ExtractGlimpse", "ExtractImagePatches", "FFT", "FFT2D", "FFT3D", "FakeParam",
    "FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel",
    "Fill", "Floor", "FloorDiv", "FloorMod", "FusedBatchNorm", "FusedBatchNormGrad",
    "FusedBatchNormGradV2", "FusedBatchNormGradV3", "FusedBatchNormV2", "FusedBatchNormV3",
    "FusedPadConv2D", "FusedResizeAndPadConv2D", "Gather", "GatherNd", "GatherV2", "Greater",
    "GreaterEqual", "GuaranteeConst", "HSVToRGB", "HashTable", "HashTableV2",
    "HistogramFixedWidth", "IFFT", "IFFT2D", "IFFT3D", "IRFFT", "IRFFT2D", "Identity", "IdentityN",
    "If", "Igamma", "Igammac", "Imag", "ImageProjectiveTransformV2", "ImageProjectiveTransformV3",
    "InTopK", "InTopKV2", "InitializeTable", "InitializeTableV2", "Inv", "Invert",
    "InvertPermutation", "IsFinite", "IsInf", "IsNan", "IsVariableInitialized", "IteratorGetNext",
    "IteratorGetNextAsOptional", "IteratorGetNextSync", "IteratorToStringHandle", "IteratorV2",
    "L2Loss", "LRN", "LeakyRelu", "LeakyReluGrad", "LeftShift", "Less", "LessEqual", "Lgamma",
    "LinSpace", "ListDiff", "Log", "Log1p", "LogMatrixDeterminant", "LogSoftmax", "LogicalAnd",
    "LogicalNot", "LogicalOr", "LookupTableExport", "LookupTableExportV2", "LookupTableFind",
    "LookupTableFindV2", "LookupTableImport", "LookupTableImportV2", "LookupTableInsert",
    "LookupTableInsertV2", "LookupTableRemoveV2", "LookupTableSize", "LookupTableSizeV2",
    "LoopCond", "LowerBound", "MakeIterator", "MatMul", "MatrixBandPart", "MatrixDeterminant",
    "MatrixDiag", "MatrixDiagPart", "MatrixDiagPartV2", "MatrixDiagPartV3", "MatrixDiagV2",
    "MatrixDiagV3", "MatrixInverse", "MatrixSetDiag", "MatrixSetDiagV2", "MatrixSetDiagV3",
    "MatrixSolve", "MatrixTriangularSolve", "Max", "MaxPool", "MaxPool3D", "MaxPoolGrad",
    "MaxPoolV2", "MaxPoolWithArgmax", "Maximum", "Mean", "Merge", "Min", "Minimum", "MirrorPad",
    "Mod", "Mul", "MulNoNan", "Multinomial", "MutableDenseHashTable", "MutableDenseHashTableV2",
    "MutableHashTable", "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2",
    "MutableHashTableV2", "Ndtri", "Neg", "NextAfter", "NextIteration", "NoOp",
    "NonMaxSuppression", "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4",
    "NonMaxSuppressionV5", "NotEqual", "OneHot", "OnesLike", "OptionalFromValue",
    "OptionalGetValue", "OptionalHasValue", "OptionalNone", "Pack", "Pad", "PadV2",
    "ParallelConcat", "ParallelDynamicStitch", "ParseExample", "ParseExampleV2",
    "ParseSequenceExample", "ParseSequenceExampleV2", "ParseSingleExample",
    "ParseSingleSequenceExample", "ParseTensor", "PartitionedCall", "Placeholder",
    "PlaceholderWithDefault", "PopulationCount", "Pow", "PreventGradient", "Print", "PrintV2",
    "Prod", "Qr", "QuantizeAndDequantize", "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3",
    "QuantizeAndDequantizeV4", "QuantizeV2", "RFFT", "RFFT2D", "RFFT3D", "RGBToHSV",
    "RaggedGather", "RaggedRange", "RaggedTensorFromVariant", "RaggedTensorToSparse",
    "RaggedTensorToTensor", "RaggedTensorToVariant", "RandomGamma", "RandomPoisson",
    "RandomPoissonV2", "RandomShuffle", "RandomStandardNormal", "RandomUniform",
    "RandomUniformInt", "Range", "Rank", "ReadVariableOp", "Real", "RealDiv", "Reciprocal",
    "ReciprocalGrad", "RefIdentity", "RegexFullMatch", "RegexReplace", "Relu", "Relu6",
    "Relu6Grad", "ReluGrad", "Reshape", "ResizeArea", "ResizeBicubic", "ResizeBilinear",
    "ResizeBilinearGrad", "ResizeNearestNeighbor", "ResizeNearestNeighborGrad", "ResourceGather",
    "ResourceGatherNd", "ResourceScatterAdd", "ResourceScatterNdAdd", "ResourceScatterNdUpdate",
    "ResourceScatterUpdate", "ResourceStridedSliceAssign", "Reverse", "ReverseSequence",
    "ReverseV2", "RightShift", "Rint", "RngReadAndSkip", "RngSkip", "Roll", "Round", "Rsqrt",
    "RsqrtGrad", "SampleDistortedBoundingBoxV2", "ScatterAdd", "ScatterNd", "ScatterNdAdd",
    "ScatterNdUpdate", "ScatterSub", "ScatterUpdate", "SegmentMax", "SegmentMean", "SegmentMin",
    "SegmentProd", "SegmentSum", "Select", "SelectV2", "SelfAdjointEigV2", "Selu", "SeluGrad",
    "SerializeTensor", "Shape", "ShapeN", "ShardedFilename", "ShardedFilespec", "Sigmoid",
    "SigmoidGrad", "Sign", "Sin", "Sinh", "Size", "Slice", "Snapshot", "Softmax",
    "SoftmaxCrossEntropyWithLogits", "Softplus", "SoftplusGrad", "Softsign", "SoftsignGrad",
    "SpaceToBatch", "SpaceToBatchND", "SpaceToDepth", "SparseFillEmptyRows", "SparseReshape",
    "SparseSegmentMean", "SparseSegmentSqrtN", "SparseSegmentSum",
    "SparseSoftmaxCrossEntropyWithLogits", "SparseTensorDenseMatMul", "SparseToDense", "Split",
    "SplitV", "Sqrt", "SqrtGrad", "Square", "SquaredDifference", "Squeeze", "Stack", "StackPopV2",
    "StackPushV2", "StackV2", "StatefulPartitionedCall", "StatelessCase", "StatelessIf",
    "StatelessWhile", "StaticRegexFullMatch", "StaticRegexReplace", "StopGradient", "StridedSlice",
    "StridedSliceGrad", "StringFormat", "StringJoin", "StringLength", "StringLower",
    "StringNGrams", "StringSplit", "StringSplitV2", "StringStrip", "StringToHashBucket",
    "StringToHashBucketFast", "StringToHashBucketStrong", "StringToNumber", "StringUpper", "Sub",
    "Substr", "Sum", "Svd", "Switch", "SymbolicGradient", "TakeDataset", "Tan", "Tanh", "TanhGrad",
    "TemporaryVariable", "TensorScatterAdd", "TensorScatterMax", "TensorScatterMin",
    "TensorScatterSub", "TensorScatterUpdate", "TensorStridedSliceUpdate", "Tile", "TopK",
    "TopKV2", "Transpose", "TridiagonalSolve", "TruncateDiv", "TruncateMod", "TruncatedNormal",
    "Unbatch", "UnicodeDecode", "UnicodeDecodeWithOffsets", "UnicodeEncode", "UnicodeScript",
    "UnicodeTranscode", "Unique", "UniqueV2", "UniqueWithCounts", "Unpack", "UnravelIndex",
    "UnsortedSegmentMax", "UnsortedSegmentMin", "UnsortedSegmentProd", "UnsortedSegmentSum",
    "UpperBound", "VarHandleOp", "VarIsInitializedOp", "Variable", "VariableShape", "VariableV2",
    "Where", "While", "Xdivy", "Xlog1py", "Xlogy", "ZerosLike", "Zeta", "_Arg", "_DeviceArg",
    "_DeviceRetval", "_FusedBatchNormEx", "_FusedConv2D", "_FusedDepthwiseConv2dNative",
    "_FusedMatMul", "_If", "_Retval", "_While",
];

/// Families of op names that are all ordinary (optimizers, stateless RNG, lists, arrays, ...).
#[rustfmt::skip]
const KNOWN_PREFIXES: &[&str] = &[
    "Apply", "Dataset", "Experimental", "Optimize", "Quantized", "Ragged", "Random",
    "ResourceApply", "ResourceSparseApply", "Sparse", "SparseApply", "Stateless", "TensorArray",
    "TensorList", "Tpu", "Xla", "_Mkl", "_Xla",
];

/// Dataset ops are numerous and mostly pure; file-reading ones are in [`FILE_OPS`].
fn known_op(op: &str) -> bool {
    KNOWN_OPS.binary_search(&op).is_ok()
        || KNOWN_PREFIXES.iter().any(|p| op.starts_with(p))
        || (op.ends_with("Dataset") || op.ends_with("DatasetV2") || op.ends_with("DatasetV3"))
        || op.ends_with("Grad")
        || op.ends_with("GradV2")
}

pub use modelward_formats::graph_sniff::looks_like_saved_model;

struct Scope<'a> {
    /// `graph` or the function's name.
    label: String,
    nodes: &'a [NodeDef],
    by_name: HashMap<&'a str, &'a NodeDef>,
    /// Part of the standard checkpoint saver.
    saver: bool,
}

fn scope_of<'a>(label: String, nodes: &'a [NodeDef], saver: bool) -> Scope<'a> {
    let by_name = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    Scope {
        label,
        nodes,
        by_name,
        saver,
    }
}

/// The string constant that feeds input `i` of `node`, following `Identity` nodes.
fn const_input(scope: &Scope<'_>, node: &NodeDef, i: usize) -> Option<String> {
    let mut name = node.input.get(i)?.as_str();
    for _ in 0..=MAX_CONST_HOPS {
        let base = name.trim_start_matches('^').split(':').next().unwrap_or(name);
        let n = scope.by_name.get(base)?;
        match n.op.as_str() {
            "Const" => {
                let v = n.attr.get("value")?;
                if let Some(attr_value::Value::Tensor(t)) = &v.value {
                    let s = t.string_val.first()?;
                    return Some(String::from_utf8_lossy(s).into_owned());
                }
                return None;
            }
            "Identity" | "Snapshot" => name = n.input.first()?.as_str(),
            _ => return None,
        }
    }
    None
}

fn attr_s(node: &NodeDef, key: &str) -> Option<String> {
    match &node.attr.get(key)?.value {
        Some(attr_value::Value::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// Whether a path names something outside the model: absolute, a URL, a drive, or `..` that
/// climbs out after normalisation.
pub(crate) fn path_escapes(p: &str) -> bool {
    let p = p.trim();
    if p.is_empty() {
        return false;
    }
    let bytes = p.as_bytes();
    if p.starts_with('/') || p.starts_with('\\') || p.starts_with('~') || p.contains('\0') {
        return true;
    }
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return true;
    }
    if let Some(i) = p.find("://")
        && p[..i]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
    {
        return true;
    }
    let mut depth = 0i64;
    for part in p.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn is_saver_function(name: &str) -> bool {
    name.contains("_traced_save") || name.contains("_traced_restore")
}

fn is_saver_node(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or(name);
    name.contains('/')
        && (first == "save"
            || first
                .strip_prefix("save_")
                .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())))
}

/// Facts, capped per rule by the one collector.
struct Out {
    facts: modelward_diagnostics::FactCollector,
}

impl Default for Out {
    fn default() -> Out {
        Out::new(MAX_FACTS_PER_RULE)
    }
}

impl Out {
    fn new(cap: usize) -> Out {
        Out {
            facts: modelward_diagnostics::FactCollector::new(cap),
        }
    }

    fn push(&mut self, f: Fact) {
        self.facts.push(f);
    }
}

fn budget_fact(what: &str, e: EstimateError, len: usize) -> Fact {
    match e {
        EstimateError::OverBudget => Fact::new(
            "MWD002",
            format!(
                "{what} not scanned: decoding it would take more than {} MiB",
                MAX_DECODE_MEMORY >> 20
            ),
        )
        .evidence(format!("{len} bytes of protobuf")),
        EstimateError::Malformed(at) => Fact::new("TFM107", format!("{what} is not a valid protobuf"))
            .at(at as u64)
            .evidence(format!("bad field at offset {at} of {len} bytes")),
    }
}

/// Ops seen so far, and what was reported.
#[derive(Default)]
struct Analysis {
    out: Out,
    inventory: BTreeMap<String, usize>,
    unknown: BTreeMap<String, (usize, String)>,
    graph_nodes: usize,
    functions: usize,
    function_nodes: usize,
}

impl Analysis {
    /// Every node of a graph and of its function library.
    fn graph(&mut self, graph: &GraphDef, label: String) {
        let lib_names: HashSet<&str> = graph
            .library
            .iter()
            .flat_map(|l| l.function.iter())
            .filter_map(|f| f.signature.as_ref().map(|s| s.name.as_str()))
            .collect();
        let mut scopes = vec![scope_of(label, &graph.node, false)];
        self.graph_nodes += graph.node.len();
        if let Some(lib) = &graph.library {
            for f in &lib.function {
                let name = f.signature.as_ref().map_or("?", |s| s.name.as_str());
                self.functions += 1;
                self.function_nodes += f.node_def.len();
                scopes.push(scope_of(
                    format!("function '{name}'"),
                    &f.node_def,
                    is_saver_function(name),
                ));
            }
        }
        for scope in &scopes {
            for node in scope.nodes {
                self.node(scope, node, &lib_names);
            }
        }
    }

    fn node(&mut self, scope: &Scope<'_>, node: &NodeDef, lib_names: &HashSet<&str>) {
        let op = node.op.as_str();
        *self.inventory.entry(op.to_owned()).or_insert(0) += 1;
        let at = format!("{op} node '{}' in {}", node.name, scope.label);
        let out = &mut self.out;
        if PY_FUNC_OPS.contains(&op) {
            let token = attr_s(node, "token").map_or_else(String::new, |t| format!(" token={t:?}"));
            out.push(
                Fact::new("TFM101", format!("{at} calls back into Python when run"))
                    .evidence(format!("{op}{token}")),
            );
        } else if FILE_OPS.contains(&op) {
            let path = const_input(scope, node, 0)
                .or_else(|| attr_s(node, "memory_region_name"))
                .or_else(|| attr_s(node, "dump_root"))
                .map_or_else(String::new, |p| format!(" path {p:?}"));
            out.push(
                Fact::new("TFM102", format!("{at} reads or writes host files"))
                    .evidence(format!("{op}{path}")),
            );
        } else if op == "PrintV2" {
            if let Some(stream) = attr_s(node, "output_stream")
                && stream.starts_with("file://")
            {
                out.push(
                    Fact::new("TFM102", format!("{at} prints to a file"))
                        .evidence(format!("PrintV2 output_stream={stream:?}")),
                );
            }
        } else if PATH_OPS.contains(&op) {
            let path = const_input(scope, node, 0);
            let standard = scope.saver || is_saver_node(&node.name);
            match path {
                Some(p) if path_escapes(&p) => out.push(
                    Fact::new("TFM102", format!("{at} uses a path outside the model"))
                        .evidence(format!("{op} path {p:?}")),
                ),
                _ if standard || op.starts_with("InitializeTableFromTextFile") => {}
                p => out.push(
                    Fact::new(
                        "TFM103",
                        format!("{at} reads or writes a checkpoint outside the standard saver"),
                    )
                    .evidence(match p {
                        Some(p) => format!("{op} path {p:?}"),
                        None => format!(
                            "{op} path from input {:?}",
                            node.input.first().map_or("", |s| s.as_str())
                        ),
                    }),
                ),
            }
        } else if !known_op(op) && !lib_names.contains(op) {
            self.unknown.entry(op.to_owned()).or_insert((0, at)).0 += 1;
        }
    }

    fn finish(mut self, what: String) -> Vec<Fact> {
        for (op, (n, first)) in &self.unknown {
            self.out.push(
                Fact::new("TFM104", format!("op {op} is not a known TensorFlow op ({n}×)"))
                    .evidence(format!("first: {first}")),
            );
        }
        let mut by_count: Vec<(&String, &usize)> = self.inventory.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut listed: Vec<String> = by_count
            .iter()
            .take(MAX_INVENTORY_OPS)
            .map(|(op, n)| format!("{op}×{n}"))
            .collect();
        if by_count.len() > MAX_INVENTORY_OPS {
            listed.push(format!("… {} more", by_count.len() - MAX_INVENTORY_OPS));
        }
        let msg = format!(
            "{what}: {} graph nodes, {} functions with {} nodes, {} distinct ops",
            self.graph_nodes,
            self.functions,
            self.function_nodes,
            self.inventory.len()
        );
        self.out
            .push(Fact::new("TFM105", msg).evidence(listed.join(", ")));
        finish(self.out)
    }
}

/// Checks a `saved_model.pb`: every op in every meta graph and in its function library, and the
/// asset file names.
pub fn check_saved_model(bytes: &[u8]) -> Vec<Fact> {
    check_saved_model_capped(bytes, MAX_FACTS_PER_RULE)
}

/// [`check_saved_model`] with at most `cap` facts per rule (the scanner passes
/// `max-findings-per-rule`).
pub fn check_saved_model_capped(bytes: &[u8], cap: usize) -> Vec<Fact> {
    if let Err(e) = wire::estimate(bytes, wire::TENSORFLOW_SAVEDMODEL, MAX_DECODE_MEMORY) {
        return vec![budget_fact("SavedModel", e, bytes.len())];
    }
    let model = match wire::decode::<SavedModel>(bytes) {
        Ok((m, _)) => m,
        Err(e) => {
            return vec![Fact::new("TFM107", "SavedModel is not a valid protobuf").evidence(e.to_string())];
        }
    };
    let mut a = Analysis {
        out: Out::new(cap),
        ..Analysis::default()
    };
    let several = model.meta_graphs.len() > 1;
    for (mi, meta) in model.meta_graphs.iter().enumerate() {
        if let Some(graph) = &meta.graph_def {
            let label = if several {
                let tags = meta
                    .meta_info_def
                    .as_ref()
                    .map(|m| m.tags.join(","))
                    .unwrap_or_default();
                format!("graph {mi} [{tags}]")
            } else {
                "graph".to_owned()
            };
            a.graph(graph, label);
        }
        for asset in &meta.asset_file_def {
            if path_escapes(&asset.filename) {
                a.out.push(
                    Fact::new("TFM106", "SavedModel asset file name leaves the assets folder")
                        .evidence(format!("asset {:?}", asset.filename)),
                );
            }
        }
    }
    a.finish(format!("SavedModel: {} meta graph(s)", model.meta_graphs.len()))
}

/// Checks a bare `GraphDef` (a TF1 frozen graph, `*.pb`): the same op checks as
/// [`check_saved_model`], on its nodes and function library.
pub fn check_graph_def(bytes: &[u8]) -> Vec<Fact> {
    if let Err(e) = wire::estimate(bytes, wire::TENSORFLOW_GRAPHDEF, MAX_DECODE_MEMORY) {
        return vec![budget_fact("GraphDef", e, bytes.len())];
    }
    let graph = match wire::decode::<GraphDef>(bytes) {
        Ok((g, _)) => g,
        Err(e) => {
            return vec![Fact::new("TFM107", "GraphDef is not a valid protobuf").evidence(e.to_string())];
        }
    };
    let mut a = Analysis::default();
    a.graph(&graph, "graph".to_owned());
    a.finish("GraphDef".to_owned())
}

fn finish(out: Out) -> Vec<Fact> {
    out.facts.finish()
}

/// Checks `keras_metadata.pb` (Keras 2 SavedModel): each object's metadata JSON is a Keras layer
/// config, checked like [`crate::keras::check_config`] (Lambda layers, modules, gadgets).
pub fn check_keras_metadata(bytes: &[u8]) -> Vec<Fact> {
    check_keras_metadata_capped(bytes, MAX_FACTS_PER_RULE)
}

/// [`check_keras_metadata`] with at most `cap` facts per rule over all objects (the scanner
/// passes `max-findings-per-rule`).
pub fn check_keras_metadata_capped(bytes: &[u8], cap: usize) -> Vec<Fact> {
    if let Err(e) = wire::estimate(bytes, wire::KERAS_METADATA_SAVEDMETADATA, MAX_DECODE_MEMORY) {
        return vec![budget_fact("keras_metadata.pb", e, bytes.len())];
    }
    let meta = match wire::decode::<SavedMetadata>(bytes) {
        Ok((m, _)) => m,
        Err(e) => {
            return vec![
                Fact::new("TFM107", "keras_metadata.pb is not a valid protobuf").evidence(e.to_string()),
            ];
        }
    };
    let mut facts = modelward_diagnostics::FactCollector::new(cap);
    for node in &meta.nodes {
        if node.metadata.is_empty() {
            continue;
        }
        for mut f in crate::keras::check_config_capped(&node.metadata, cap) {
            if !node.node_path.is_empty() {
                f.message = format!("{} (object {})", f.message, node.node_path);
            }
            facts.push(f);
        }
    }
    facts.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_op_list_is_sorted_and_disjoint_from_the_flagged_ones() {
        assert!(
            KNOWN_OPS.windows(2).all(|w| w[0] < w[1]),
            "KNOWN_OPS must be sorted"
        );
        for op in FILE_OPS.iter().chain(PY_FUNC_OPS).chain(PATH_OPS) {
            assert!(KNOWN_OPS.binary_search(op).is_err(), "{op}");
        }
    }

    #[test]
    fn paths_that_leave_the_model_are_recognised() {
        for p in [
            "/etc/passwd",
            "..\\x",
            "a/../../b",
            "C:\\x",
            "gs://bucket/x",
            "~/.ssh/id_rsa",
            "file:///x",
        ] {
            assert!(path_escapes(p), "{p}");
        }
        for p in ["vocab.txt", "assets/vocab.txt", "a/../b", "./x", ""] {
            assert!(!path_escapes(p), "{p}");
        }
    }

    #[test]
    fn saver_names() {
        assert!(is_saver_node("save/SaveV2"));
        assert!(is_saver_node("save_1/RestoreV2"));
        assert!(!is_saver_node("saved/SaveV2"));
        assert!(!is_saver_node("SaveV2"));
        assert!(is_saver_function("__inference__traced_save_123"));
    }

    #[test]
    fn garbage_is_not_a_saved_model() {
        assert!(!looks_like_saved_model(b"PK\x03\x04"));
        assert!(!looks_like_saved_model(b""));
        assert!(looks_like_saved_model(&[
            0x08, 0x01, 0x12, 0x80, 0x01, 0x0a, 0x05
        ]));
    }
}
