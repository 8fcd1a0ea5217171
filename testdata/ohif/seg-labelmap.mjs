// Loads DICOM SEG files the way OHIF's SEG viewer does and prints the label
// maps it would display, so that tests can compare them with tmcad's masks.
//
// Usage: node seg-labelmap.mjs JOBS.json
//   JOBS.json: {"jobs": [{"seg": "a.dcm", "sources": ["1.dcm", ...]}, ...]}
// Output (stdout, one JSON object):
//   {"results": [{"seg", "error"?, "segments": [{"number", "label", "cielab",
//     "rgb"}], "labelmaps": [{"sop", "rows", "columns", "groups": [base64]}]}]}
// Each label map holds, per source image, one byte per pixel: the number of
// the segment OHIF shows there, 0 for none. Segments that overlap are spread
// over several groups, as the adapter returns them.
//
// The SEG goes through @cornerstonejs/adapters'
// adaptersSEG.Cornerstone3D.Segmentation.createFromDICOMSegBuffer, the call
// OHIF's SEG extension makes, with @cornerstonejs/core's metaData as the
// metadata provider. The source images are given as "dicomfile:N" image ids
// (OHIF's ids for local files), and a provider built from each source file
// with dcmjs answers the modules OHIF's own MetadataProvider answers, with
// the same rules (an image without Image Orientation (Patient) gets rows
// along x and columns along y).
import fs from 'node:fs';
import dcmjs from 'dcmjs';
import * as core from '@cornerstonejs/core';
import { adaptersSEG } from '@cornerstonejs/adapters';

const { DicomMessage, DicomMetaDictionary, Colors } = dcmjs.data;

function arrayBufferOf(path) {
  const b = fs.readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}

function naturalize(path) {
  const msg = DicomMessage.readFile(arrayBufferOf(path));
  return DicomMetaDictionary.naturalizeDataset(msg.dict);
}

const num = (v) => (v === undefined || v === null ? undefined : Array.isArray(v) ? v.map(Number) : Number(v));

// The modules of one source image, as OHIF's MetadataProvider derives them
// from the naturalized instance.
function modules(instance) {
  const iop = instance.ImageOrientationPatient;
  const spacing = instance.PixelSpacing ?? instance.ImagerPixelSpacing;
  return {
    instance,
    generalSeriesModule: {
      modality: instance.Modality,
      seriesInstanceUID: instance.SeriesInstanceUID,
      seriesNumber: num(instance.SeriesNumber),
      studyInstanceUID: instance.StudyInstanceUID,
    },
    generalImageModule: {
      sopInstanceUID: instance.SOPInstanceUID,
      instanceNumber: num(instance.InstanceNumber),
    },
    sopCommonModule: {
      sopClassUID: instance.SOPClassUID,
      sopInstanceUID: instance.SOPInstanceUID,
    },
    imagePixelModule: {
      samplesPerPixel: num(instance.SamplesPerPixel),
      photometricInterpretation: instance.PhotometricInterpretation,
      rows: num(instance.Rows),
      columns: num(instance.Columns),
      bitsAllocated: num(instance.BitsAllocated),
      bitsStored: num(instance.BitsStored),
      highBit: num(instance.HighBit),
      pixelRepresentation: num(instance.PixelRepresentation),
    },
    imagePlaneModule: {
      frameOfReferenceUID: instance.FrameOfReferenceUID,
      rows: num(instance.Rows),
      columns: num(instance.Columns),
      imageOrientationPatient: iop ? num(iop) : [1, 0, 0, 0, 1, 0],
      rowCosines: iop ? num(iop.slice(0, 3)) : [1, 0, 0],
      columnCosines: iop ? num(iop.slice(3, 6)) : [0, 1, 0],
      imagePositionPatient: num(instance.ImagePositionPatient) ?? [0, 0, 0],
      sliceThickness: num(instance.SliceThickness),
      pixelSpacing: num(spacing) ?? [1, 1],
      rowPixelSpacing: spacing ? Number(spacing[0]) : 1,
      columnPixelSpacing: spacing ? Number(spacing[1]) : 1,
      usingDefaultValues: !iop || !instance.ImagePositionPatient || !spacing,
    },
  };
}

const byImageId = new Map();
core.metaData.addProvider((type, imageId) => byImageId.get(imageId)?.[type], 10000);

function labelmapPixels(image) {
  const vm = image.voxelManager;
  return vm ? vm.getScalarData() : image.getPixelData();
}

let nextImage = 0;
async function loadOne(job) {
  const imageIds = [];
  const sops = [];
  for (const p of job.sources) {
    const id = `dicomfile:${nextImage++}`;
    const instance = naturalize(p);
    byImageId.set(id, modules(instance));
    imageIds.push(id);
    sops.push(instance.SOPInstanceUID);
  }
  const seg = naturalize(job.seg);
  const segments = [].concat(seg.SegmentSequence ?? []).map((s) => {
    const lab = s.RecommendedDisplayCIELabValue;
    return {
      number: Number(s.SegmentNumber),
      label: s.SegmentLabel,
      cielab: lab ? num(lab) : null,
      rgb: lab ? Colors.dicomlab2RGB8(num(lab)) : null,
    };
  });
  const res = await adaptersSEG.Cornerstone3D.Segmentation.createFromDICOMSegBuffer(imageIds, arrayBufferOf(job.seg), {
    metadataProvider: core.metaData,
  });
  const labelmaps = imageIds.map((id, i) => {
    const plane = byImageId.get(id).imagePlaneModule;
    const groups = res.labelMapImages.map((group) => {
      const image = group.find((im) => im.referencedImageId === id);
      return image ? Buffer.from(labelmapPixels(image)).toString('base64') : '';
    });
    return { sop: sops[i], rows: plane.rows, columns: plane.columns, groups };
  });
  return { seg: job.seg, segments, labelmaps };
}

async function main() {
  if (process.argv.length !== 3) {
    console.error('usage: node seg-labelmap.mjs JOBS.json');
    process.exit(2);
  }
  const { jobs } = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = [];
  for (const job of jobs) {
    try {
      results.push(await loadOne(job));
    } catch (err) {
      results.push({ seg: job.seg, error: String(err?.stack ?? err) });
    }
  }
  process.stdout.write(JSON.stringify({ results }) + '\n');
}

await main();
